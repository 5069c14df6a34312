//! The embedded directory: `sip-config/users.toml`, PINs stored as hashes keyed with the
//! server's PIN key (`pin_key`). Argon2id hashes from before are still read; each is replaced by
//! a keyed one at its account's next good login. It is the default backend, so the binary
//! answers calls with no account anywhere.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::{bail, Context, Result};
use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::Argon2;
use serde::{Deserialize, Serialize};

use super::pin_key::{self, PinKey};
use super::{valid_account, valid_pin, Amount, Directory, User, Verification, VerifyFuture};
use crate::metrics::METRICS;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalUser {
    pub account: String,
    /// A keyed hash (`$ivr-hmac-sha256$...`) or a legacy Argon2id PHC string; never the PIN.
    pub pin_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greeting: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greeting_text: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersFile {
    #[serde(default, rename = "user")]
    pub users: Vec<LocalUser>,
}

impl UsersFile {
    pub fn read(path: &Path) -> Result<UsersFile> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file: UsersFile =
            toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
        let mut seen = HashMap::new();
        for (i, user) in file.users.iter().enumerate() {
            if !valid_account(&user.account) {
                bail!(
                    "{}: user #{}: account must be 1-10 digits",
                    path.display(),
                    i + 1
                );
            }
            let readable = match pin_key::is_keyed(&user.pin_hash) {
                true => pin_key::parse(&user.pin_hash)
                    .map(|_| ())
                    .ok_or_else(|| "malformed".into()),
                false => PasswordHash::new(&user.pin_hash)
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            };
            if let Err(e) = readable {
                bail!(
                    "{}: account {}: pin_hash: {e}",
                    path.display(),
                    user.account
                );
            }
            if seen.insert(user.account.clone(), i).is_some() {
                bail!("{}: account {} appears twice", path.display(), user.account);
            }
        }
        Ok(file)
    }

    /// Replaces the file atomically (a temporary file renamed over it), mode 0600.
    pub fn write(&self, path: &Path) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("users.toml");
        let tmp = dir.join(format!(".{name}.tmp"));
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        out.write_all(b"# Local directory: edit with `ivr users add|set-pin|remove`. PINs are hashed with the PIN key.\n\n")?;
        out.write_all(toml::to_string_pretty(self)?.as_bytes())?;
        out.sync_all()?;
        std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
        Ok(())
    }
}

/// Logins waiting for a PIN-check thread; past it a login is told the directory is busy
/// (an outage prompt) rather than queued without bound.
const PIN_CHECK_QUEUE: usize = 1024;

pub struct LocalDirectory {
    /// Written only to swap a legacy hash for a keyed one.
    users: RwLock<HashMap<String, LocalUser>>,
    key: Arc<PinKey>,
    /// Where upgraded hashes are saved; `None` keeps them in memory.
    file: Option<PathBuf>,
    /// Legacy Argon2id checks, off the runtime.
    hasher: Hasher,
    /// Checked against when the account is unknown, so both cases take the same time.
    decoy_hash: String,
}

impl LocalDirectory {
    /// `pin_check_threads` (for legacy Argon2id hashes) 0 means half the cores.
    pub fn load(path: &Path, pin_check_threads: usize, key: Arc<PinKey>) -> Result<LocalDirectory> {
        let file = UsersFile::read(path)?;
        let legacy = file
            .users
            .iter()
            .filter(|u| !pin_key::is_keyed(&u.pin_hash))
            .count();
        if legacy > 0 {
            tracing::info!(
                legacy,
                "Argon2id PIN hashes are replaced by keyed ones at each account's next good login"
            );
        }
        let mut directory = LocalDirectory::new(file.users, pin_check_threads, key);
        directory.file = Some(path.to_path_buf());
        Ok(directory)
    }

    pub fn new(
        users: Vec<LocalUser>,
        pin_check_threads: usize,
        key: Arc<PinKey>,
    ) -> LocalDirectory {
        LocalDirectory {
            users: RwLock::new(users.into_iter().map(|u| (u.account.clone(), u)).collect()),
            decoy_hash: key.hash("0", "0000"),
            key,
            file: None,
            hasher: Hasher::start(pin_check_threads),
        }
    }

    /// A legacy hash proved right: keep a keyed one from now on, in memory and in the file.
    fn upgrade(&self, account: &str, legacy: &str, pin: &str) {
        let keyed = self.key.hash(account, pin);
        if let Ok(mut users) = self.users.write() {
            match users.get_mut(account) {
                Some(user) if user.pin_hash == legacy => user.pin_hash = keyed.clone(),
                _ => return,
            }
        }
        let Some(path) = self.file.clone() else {
            return;
        };
        let (account, legacy) = (account.to_string(), legacy.to_string());
        tokio::task::spawn_blocking(move || {
            let saved = UsersFile::read(&path).and_then(|mut file| {
                let user = file.users.iter_mut().find(|u| u.account == account);
                match user {
                    // Edited meanwhile (a new PIN): that edit wins.
                    Some(user) if user.pin_hash == legacy => user.pin_hash = keyed,
                    _ => return Ok(()),
                }
                file.write(&path)
            });
            match saved {
                Ok(()) => {
                    tracing::info!(account = %super::Masked(&account), "PIN hash upgraded to a keyed one")
                }
                Err(e) => tracing::warn!("PIN hash upgrade not saved: {e:#}"),
            }
        });
    }
}

type Job = (String, String, tokio::sync::oneshot::Sender<bool>);

/// Argon2id checks on a few threads of their own. Each check takes 19 MiB and tens of
/// milliseconds: on the runtime's blocking pool every thread would keep a 19 MiB malloc arena
/// (hundreds of MiB after a burst) and a login storm could take every core from SIP and media.
/// Here logins queue, memory stays at one buffer per hashing thread, and one core is left free.
struct Hasher {
    jobs: std::sync::mpsc::SyncSender<Job>,
}

impl Hasher {
    fn start(threads: usize) -> Hasher {
        let threads = match threads {
            0 => std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .div_ceil(2),
            n => n,
        };
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(PIN_CHECK_QUEUE);
        let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
        for i in 0..threads {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("pin-check-{i}"))
                .spawn(move || loop {
                    let job = queue
                        .lock()
                        .map_err(|_| ())
                        .and_then(|q| q.recv().map_err(|_| ()));
                    let Ok((hash, pin, reply)) = job else { return };
                    METRICS.pin_check_queue.dec();
                    let _ = reply.send(pin_matches(&hash, &pin));
                });
            if let Err(e) = spawned {
                tracing::error!("cannot start a PIN-check thread: {e}");
            }
        }
        Hasher { jobs }
    }

    async fn check(&self, hash: String, pin: String) -> Result<bool, String> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        // Counted before it is queued, so a thread that takes it at once never counts below 0.
        METRICS.pin_check_queue.inc();
        self.jobs.try_send((hash, pin, reply)).map_err(|_| {
            METRICS.pin_check_queue.dec();
            "PIN checks are backed up".to_string()
        })?;
        answer
            .await
            .map_err(|_| "PIN check thread stopped".to_string())
    }
}

/// Argon2id with the crate's default (OWASP) parameters and a random salt.
pub fn hash_pin(pin: &str) -> Result<String> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(pin.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing: {e}"))?
        .to_string())
}

fn pin_matches(hash: &str, pin: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(pin.as_bytes(), &h)
            .is_ok()
    })
}

impl Directory for LocalDirectory {
    fn verify<'a>(&'a self, account: &'a str, pin: &'a str, _caller: &'a str) -> VerifyFuture<'a> {
        Box::pin(async move {
            if !valid_account(account) || !valid_pin(pin) {
                return Verification::WrongCredentials;
            }
            let user = self.users.read().ok().and_then(|u| u.get(account).cloned());
            let hash = user.as_ref().map_or(&self.decoy_hash, |u| &u.pin_hash);
            let matched = if pin_key::is_keyed(hash) {
                Ok(self.key.verify(hash, account, pin))
            } else {
                let legacy = hash.clone();
                let matched = self.hasher.check(legacy.clone(), pin.to_string()).await;
                if matched == Ok(true) {
                    self.upgrade(account, &legacy, pin);
                }
                matched
            };
            match (matched, user) {
                (Ok(true), Some(user)) => Verification::Verified(User {
                    user_id: format!("local|{}", user.account),
                    greeting: user.greeting,
                    balance: user.balance,
                    greeting_text: user.greeting_text,
                }),
                (Ok(_), _) => Verification::WrongCredentials,
                (Err(e), _) => Verification::Unavailable(e),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice(pin_hash: String) -> LocalUser {
        LocalUser {
            account: "12345".into(),
            pin_hash,
            greeting: Some("greetings/12345".into()),
            balance: Some("1234.56".parse().unwrap()),
            greeting_text: None,
        }
    }

    fn directory() -> LocalDirectory {
        let key = Arc::new(PinKey::for_tests(1));
        let user = alice(key.hash("12345", "2468"));
        LocalDirectory::new(vec![user], 1, key)
    }

    fn hash_of(d: &LocalDirectory) -> String {
        d.users.read().unwrap()["12345"].pin_hash.clone()
    }

    #[tokio::test]
    async fn a_legacy_argon2id_hash_becomes_a_keyed_one_at_the_next_good_login() {
        let dir = crate::testing::TempDir::new("users-upgrade");
        let path = dir.path().join("users.toml");
        let legacy = hash_pin("2468").unwrap();
        let other = LocalUser {
            account: "777".into(),
            ..alice(hash_pin("1111").unwrap())
        };
        UsersFile {
            users: vec![alice(legacy.clone()), other],
        }
        .write(&path)
        .unwrap();
        let key = Arc::new(PinKey::for_tests(2));
        let d = LocalDirectory::load(&path, 1, key.clone()).unwrap();
        assert_eq!(
            d.verify("12345", "1111", "").await,
            Verification::WrongCredentials
        );
        assert_eq!(hash_of(&d), legacy, "a wrong PIN upgrades nothing");
        assert!(matches!(
            d.verify("12345", "2468", "").await,
            Verification::Verified(_)
        ));
        let keyed = hash_of(&d);
        assert!(pin_key::is_keyed(&keyed) && key.verify(&keyed, "12345", "2468"));
        assert!(matches!(
            d.verify("12345", "2468", "").await,
            Verification::Verified(_)
        ));
        // Saved in the file too, the other account untouched.
        let mut saved = UsersFile::read(&path).unwrap();
        for _ in 0..50 {
            if pin_key::is_keyed(&saved.users[0].pin_hash) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            saved = UsersFile::read(&path).unwrap();
        }
        assert_eq!(saved.users[0].pin_hash, keyed);
        assert!(!pin_key::is_keyed(&saved.users[1].pin_hash));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("2468"));
    }

    #[tokio::test]
    async fn right_pin_verifies_and_wrong_or_unknown_do_not() {
        let d = directory();
        match d.verify("12345", "2468", "sip:a@b").await {
            Verification::Verified(u) => {
                assert_eq!(u.user_id, "local|12345");
                assert_eq!(u.balance.map(|b| b.to_string()).as_deref(), Some("1234.56"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            d.verify("12345", "1111", "").await,
            Verification::WrongCredentials
        );
        assert_eq!(
            d.verify("99999", "2468", "").await,
            Verification::WrongCredentials
        );
        assert_eq!(
            d.verify("12a45", "2468", "").await,
            Verification::WrongCredentials
        );
        assert_eq!(
            d.verify("12345", "24*8", "").await,
            Verification::WrongCredentials
        );
    }

    #[test]
    fn users_file_is_validated() {
        let dir = crate::testing::TempDir::new("users");
        let path = dir.path().join("users.toml");
        std::fs::write(&path, "[[user]]\naccount = \"12x\"\npin_hash = \"x\"\n").unwrap();
        assert!(UsersFile::read(&path)
            .unwrap_err()
            .to_string()
            .contains("1-10 digits"));
        std::fs::write(&path, "[[user]]\naccount = \"12\"\npin_hash = \"plain\"\n").unwrap();
        assert!(UsersFile::read(&path)
            .unwrap_err()
            .to_string()
            .contains("pin_hash"));
    }
}

//! The embedded directory: `sip-config/users.toml`, PINs stored as Argon2id hashes. It is the
//! default backend, so the binary answers calls with no account anywhere.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::Argon2;
use serde::{Deserialize, Serialize};

use super::{valid_account, valid_pin, Amount, Directory, User, Verification, VerifyFuture};
use crate::metrics::METRICS;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalUser {
    pub account: String,
    /// Argon2id PHC string, never the PIN.
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
            PasswordHash::new(&user.pin_hash).map_err(|e| {
                anyhow::anyhow!(
                    "{}: account {}: pin_hash: {e}",
                    path.display(),
                    user.account
                )
            })?;
            if seen.insert(user.account.clone(), i).is_some() {
                bail!("{}: account {} appears twice", path.display(), user.account);
            }
        }
        Ok(file)
    }
}

/// Logins waiting for a PIN-check thread; past it a login is told the directory is busy
/// (an outage prompt) rather than queued without bound.
const PIN_CHECK_QUEUE: usize = 1024;

pub struct LocalDirectory {
    users: HashMap<String, LocalUser>,
    hasher: Hasher,
    /// Checked against when the account is unknown, so both cases take the same time.
    decoy_hash: String,
}

impl LocalDirectory {
    /// `pin_check_threads` 0 means half the cores.
    pub fn load(path: &Path, pin_check_threads: usize) -> Result<LocalDirectory> {
        let file = UsersFile::read(path)?;
        Ok(LocalDirectory::new(file.users, pin_check_threads))
    }

    pub fn new(users: Vec<LocalUser>, pin_check_threads: usize) -> LocalDirectory {
        LocalDirectory {
            users: users.into_iter().map(|u| (u.account.clone(), u)).collect(),
            hasher: Hasher::start(pin_check_threads),
            decoy_hash: hash_pin("0000").unwrap_or_default(),
        }
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
            let user = self.users.get(account).cloned();
            let hash = user
                .as_ref()
                .map_or(self.decoy_hash.clone(), |u| u.pin_hash.clone());
            let pin = pin.to_string();
            let matched = self.hasher.check(hash, pin).await;
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

    fn directory() -> LocalDirectory {
        LocalDirectory::new(
            vec![LocalUser {
                account: "12345".into(),
                pin_hash: hash_pin("2468").unwrap(),
                greeting: Some("greetings/12345".into()),
                balance: Some("1234.56".parse().unwrap()),
                greeting_text: None,
            }],
            1,
        )
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

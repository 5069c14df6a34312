//! PINs hashed with a key the server holds (as banks keep PIN verification keys): a 4-digit PIN
//! has 10,000 values, so no amount of stretching saves a leaked hash, but without the key the
//! hashes say nothing. A hash is `$ivr-hmac-sha256$<salt>$<mac>`, the HMAC-SHA-256 under the key
//! of the salt, the account and the PIN: bound to its account, different for equal PINs,
//! checked in constant time in about a microsecond.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

const PREFIX: &str = "$ivr-hmac-sha256$";
const DOMAIN: &[u8] = b"ivr-pin-v1";
const SALT_LEN: usize = 16;

pub struct PinKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for PinKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PinKey(..)")
    }
}

impl PinKey {
    /// The key from `value` (64 hex digits, from the environment) or else the file at `path`,
    /// made (32 random bytes, mode 0600) when it does not exist yet.
    pub fn load(value: Option<&str>, path: &Path) -> Result<PinKey> {
        if let Some(value) = value {
            return PinKey::from_hex(value).context("IVR_DIRECTORY__PIN_KEY");
        }
        match std::fs::read_to_string(path) {
            Ok(text) => {
                warn_if_readable_by_others(path);
                PinKey::from_hex(text.trim())
                    .with_context(|| format!("directory.pin_key_file {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => PinKey::create(path),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Writes a new key beside `path` and links it into place, so a reader never sees half a
    /// key; when another process (a second node on the same folder) made one first, that one
    /// is read instead.
    fn create(path: &Path) -> Result<PinKey> {
        let key = Zeroizing::new(rand::random::<[u8; 32]>());
        let hex = Zeroizing::new(hex(key.as_slice()));
        let tmp = path.with_extension(format!("new-{:016x}", rand::random::<u64>()));
        let mut file = std::fs::OpenOptions::new();
        file.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
        let written = file
            .open(&tmp)
            .and_then(|mut f| {
                f.write_all(hex.as_bytes())?;
                f.write_all(b"\n")?;
                f.sync_all()
            })
            .and_then(|()| std::fs::hard_link(&tmp, path));
        let _ = std::fs::remove_file(&tmp);
        match written {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return PinKey::load(None, path);
            }
            Err(e) => {
                return Err(e).with_context(|| format!("creating the PIN key {}", path.display()))
            }
        }
        tracing::warn!(
            file = %path.display(),
            "made a new PIN key: back it up with the users file; without it no keyed PIN verifies"
        );
        Ok(PinKey(key))
    }

    fn from_hex(text: &str) -> Result<PinKey> {
        if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("a PIN key is 64 hex digits (32 bytes)");
        }
        let mut key = Zeroizing::new([0u8; 32]);
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)?;
        }
        Ok(PinKey(key))
    }

    #[cfg(test)]
    pub fn for_tests(byte: u8) -> PinKey {
        PinKey(Zeroizing::new([byte; 32]))
    }

    fn mac(&self, salt: &[u8], account: &str, pin: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_slice())
            .expect("HMAC takes any key length");
        for part in [DOMAIN, salt, account.as_bytes(), &[0], pin.as_bytes()] {
            mac.update(part);
        }
        mac
    }

    /// A new hash of `pin` for `account`, with a fresh salt.
    pub fn hash(&self, account: &str, pin: &str) -> String {
        let salt: [u8; SALT_LEN] = rand::random();
        let tag = self.mac(&salt, account, pin).finalize().into_bytes();
        format!("{PREFIX}{}${}", B64.encode(salt), B64.encode(tag))
    }

    /// Whether `hash` (keyed) is `pin`'s for `account`; constant time in the tag.
    pub fn verify(&self, hash: &str, account: &str, pin: &str) -> bool {
        let Some((salt, tag)) = parse(hash) else {
            return false;
        };
        self.mac(&salt, account, pin).verify_slice(&tag).is_ok()
    }
}

/// Whether a stored hash is of this keyed kind (else it is a legacy Argon2id one).
pub fn is_keyed(hash: &str) -> bool {
    hash.starts_with(PREFIX)
}

/// A keyed hash's salt and tag, when it is well formed.
pub fn parse(hash: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let (salt, tag) = hash.strip_prefix(PREFIX)?.split_once('$')?;
    let (salt, tag) = (B64.decode(salt).ok()?, B64.decode(tag).ok()?);
    (salt.len() == SALT_LEN && tag.len() == 32).then_some((salt, tag))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(file = %path.display(), "the PIN key can be read by others: chmod 600 it");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyed_hash_verifies_its_pin_for_its_account_under_its_key_only() {
        let key = PinKey::for_tests(7);
        let hash = key.hash("12345", "2468");
        assert!(is_keyed(&hash));
        assert!(key.verify(&hash, "12345", "2468"));
        assert!(!key.verify(&hash, "12345", "2469"));
        assert!(!key.verify(&hash, "54321", "2468"), "bound to its account");
        assert!(
            !PinKey::for_tests(8).verify(&hash, "12345", "2468"),
            "useless without the key"
        );
        assert_ne!(hash, key.hash("12345", "2468"), "salted");
        for junk in ["", PREFIX, "$ivr-hmac-sha256$x$y", "$argon2id$v=19$m=1$x$y"] {
            assert!(!key.verify(junk, "12345", "2468"), "{junk:?}");
        }
    }

    #[test]
    fn the_key_file_is_made_once_with_mode_0600_and_read_back() {
        let dir = crate::testing::TempDir::new("pin-key");
        let path = dir.path().join("pin.key");
        let made = PinKey::load(None, &path).unwrap();
        let hash = made.hash("1", "0000");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = PinKey::load(None, &path).unwrap();
        assert!(
            again.verify(&hash, "1", "0000"),
            "the same key on the next start"
        );
        let from_env = "ab".repeat(32);
        let env_key = PinKey::load(Some(&from_env), &path).unwrap();
        assert!(!env_key.verify(&hash, "1", "0000"), "the environment wins");
        assert!(PinKey::load(Some("short"), &path).is_err());
        assert!(!format!("{made:?}").contains(&hex(made.0.as_slice())));
    }

    #[test]
    fn nodes_starting_together_on_one_folder_share_one_key() {
        let dir = crate::testing::TempDir::new("pin-key-race");
        let path = dir.path().join("pin.key");
        let keys: Vec<PinKey> = std::thread::scope(|s| {
            let starts: Vec<_> = (0..8)
                .map(|_| s.spawn(|| PinKey::load(None, &path)))
                .collect();
            starts
                .into_iter()
                .map(|t| t.join().unwrap().unwrap())
                .collect()
        });
        let hash = keys[0].hash("1", "0000");
        assert!(keys.iter().all(|k| k.verify(&hash, "1", "0000")));
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "only pin.key: no temporary files left");
    }
}

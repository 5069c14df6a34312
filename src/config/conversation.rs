//! `[flow]`, `[directory]`, `[lockout]` and `[transfer]`: what a caller hears, who verifies
//! them, how many guesses they get, and where they may be sent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::directory::auth0::settings::Secret;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowSettings {
    /// The conversation: prompts, questions, menus and actions. Numbers no route names get it
    /// unless `unknown` is `reject`.
    pub file: PathBuf,
    /// A flow per dialled number (the DID, as the trunk sends it; a leading `+` is optional).
    pub routes: BTreeMap<String, PathBuf>,
    pub unknown: UnknownNumbers,
}

/// What a call to a number no route names gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownNumbers {
    /// The flow in `flow.file`.
    #[default]
    Default,
    /// 404 Not Found.
    Reject,
}

impl Default for FlowSettings {
    fn default() -> Self {
        FlowSettings {
            file: PathBuf::from("sip-config/flow.toml"),
            routes: BTreeMap::new(),
            unknown: UnknownNumbers::Default,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Local,
    Auth0,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectorySettings {
    pub backend: Backend,
    /// The local directory's users (account, PIN hash, greeting, balance).
    pub users: PathBuf,
    /// Threads checking legacy Argon2id PIN hashes (about 12 ms and 19 MiB each); 0 = half
    /// the cores.
    pub pin_check_threads: usize,
    /// The key PINs are hashed with, 64 hex digits: only from the environment
    /// (`IVR_DIRECTORY__PIN_KEY`); else `pin_key_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin_key: Option<Secret>,
    /// Where the PIN key is kept; made (mode 0600) on first start. Default: `pin.key` beside
    /// the users file.
    pub pin_key_file: Option<PathBuf>,
}

impl DirectorySettings {
    pub fn pin_key_file(&self) -> PathBuf {
        self.pin_key_file.clone().unwrap_or_else(|| {
            let dir = self.users.parent().unwrap_or(Path::new("."));
            dir.join("pin.key")
        })
    }

    /// The PIN key, read or made.
    pub fn pin_key(&self) -> Result<crate::directory::pin_key::PinKey> {
        let value = self.pin_key.as_ref().map(|k| k.expose());
        crate::directory::pin_key::PinKey::load(value, &self.pin_key_file())
    }
}

impl Default for DirectorySettings {
    fn default() -> Self {
        DirectorySettings {
            backend: Backend::Local,
            users: PathBuf::from("sip-config/users.toml"),
            pin_check_threads: 0,
            pin_key: None,
            pin_key_file: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutSettings {
    /// Wrong PINs for one account within the window that lock it.
    pub max_failures: usize,
    /// Wrong PINs from one caller ID (across accounts) within the window that lock it.
    pub caller_max_failures: usize,
    pub window_s: u64,
    pub lock_s: u64,
    /// Count in Redis, shared by every node (`redis://127.0.0.1:6379/0`); empty: in memory.
    pub redis_url: String,
    /// The secret every node hashes lockout keys with: from the environment only
    /// (`IVR_LOCKOUT__KEY`), or `key_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Secret>,
    pub key_file: Option<PathBuf>,
    /// Wrong PINs across every account in a minute past which every login waits (a campaign
    /// of one guess per account from many addresses passes the other limits).
    pub breaker_per_minute: usize,
    /// How long each login waits while the breaker is open.
    pub breaker_delay_ms: u64,
}

impl Default for LockoutSettings {
    fn default() -> Self {
        LockoutSettings {
            max_failures: 5,
            caller_max_failures: 10,
            window_s: 900,
            lock_s: 900,
            redis_url: String::new(),
            key: None,
            key_file: None,
            breaker_per_minute: 120,
            breaker_delay_ms: 2000,
        }
    }
}

impl LockoutSettings {
    /// The shared key, when Redis is used.
    pub fn key(&self) -> Result<Option<Vec<u8>>> {
        if self.redis_url.is_empty() {
            return Ok(None);
        }
        if let Some(key) = &self.key {
            return Ok(Some(key.expose().as_bytes().to_vec()));
        }
        let Some(path) = &self.key_file else {
            bail!("lockout.redis_url needs a key every node shares: IVR_LOCKOUT__KEY or lockout.key_file");
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("lockout.key_file {}", path.display()))?;
        let key = text.trim();
        if key.len() < 16 {
            bail!(
                "lockout.key_file {}: the key must be at least 16 characters",
                path.display()
            );
        }
        Ok(Some(key.as_bytes().to_vec()))
    }
}

/// How a bridged transfer (`mode = "bridge"`) presents itself to the PBX: the user in its From,
/// and the credentials it answers the PBX's digest challenges with, when it asks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransferSettings {
    /// The From user of the calls we place. Fixed: the caller's own From is the caller's word,
    /// and an internal PBX would show (or trust) whatever number a stranger wrote there.
    pub present_as: String,
    pub username: String,
    /// From the environment only (`IVR_TRANSFER__PASSWORD`), or `password_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
}

impl Default for TransferSettings {
    fn default() -> Self {
        TransferSettings {
            present_as: "ivr".into(),
            username: String::new(),
            password: None,
            password_file: None,
        }
    }
}

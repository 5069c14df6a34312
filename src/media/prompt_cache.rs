//! Resampled prompt audio kept on disk, named by the WAV's content hash and the target rate, so
//! a restart (or a test that starts the server fifty times) decodes and resamples each prompt
//! once. A debug build spends seconds in the FFT resampler; reading a cached file takes
//! microseconds. The cache is an optimisation only: any file it cannot read or write is
//! recomputed, and a changed WAV has a new hash, so a stale entry is never used.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// Bumped whenever what a cached file holds changes meaning (the resampler, the scaling).
const FORMAT: &str = "v1";

#[derive(Debug, Clone)]
pub struct PcmCache {
    dir: PathBuf,
}

impl PcmCache {
    pub fn new(dir: &Path) -> PcmCache {
        PcmCache {
            dir: dir.to_path_buf(),
        }
    }

    /// The name a WAV's audio is kept under: its content, not its path.
    pub fn key(wav: &[u8]) -> String {
        let digest = Sha256::digest(wav);
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    fn path(&self, key: &str, rate: u32) -> PathBuf {
        self.dir.join(format!("{key}-{rate}-{FORMAT}.s16"))
    }

    /// The 16-bit samples at `rate` made earlier from the WAV with this key.
    pub fn get(&self, key: &str, rate: u32) -> Option<Vec<i16>> {
        let bytes = std::fs::read(self.path(key, rate)).ok()?;
        if bytes.len() % 2 != 0 {
            return None;
        }
        Some(
            bytes
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect(),
        )
    }

    /// Keeps the samples; several servers may write the same entry at once, so each writes a
    /// file of its own and renames it into place. A failure only costs the next start time.
    pub fn put(&self, key: &str, rate: u32, samples: &[i16]) {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let partial = self.dir.join(format!(
            ".{key}-{rate}.{}.{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let written = std::fs::create_dir_all(&self.dir)
            .and_then(|()| std::fs::write(&partial, bytes))
            .and_then(|()| std::fs::rename(&partial, self.path(key, rate)));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&partial);
            tracing::debug!(dir = %self.dir.display(), error = %e, "prompt cache not written");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_come_back_as_kept_and_only_for_their_key_and_rate() {
        let temp = crate::testing::TempDir::new("pcm-cache");
        let cache = PcmCache::new(&temp.path().join("cache"));
        let key = PcmCache::key(b"RIFF one");
        assert_ne!(key, PcmCache::key(b"RIFF two"));
        assert_eq!(cache.get(&key, 8000), None);
        cache.put(&key, 8000, &[1, -2, i16::MAX, i16::MIN]);
        assert_eq!(cache.get(&key, 8000), Some(vec![1, -2, i16::MAX, i16::MIN]));
        assert_eq!(cache.get(&key, 16000), None);
        let leftovers = std::fs::read_dir(temp.path().join("cache"))
            .unwrap()
            .count();
        assert_eq!(leftovers, 1, "no partial file stays behind");
    }

    #[test]
    fn an_unwritable_cache_is_only_slower() {
        let temp = crate::testing::TempDir::new("pcm-cache-ro");
        let blocked = temp.path().join("a-file");
        std::fs::write(&blocked, b"not a directory").unwrap();
        let cache = PcmCache::new(&blocked);
        cache.put("k", 8000, &[1, 2]);
        assert_eq!(cache.get("k", 8000), None);
    }
}

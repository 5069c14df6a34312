//! What the unit tests share: temporary directories that clean up after themselves, WAV
//! fixtures, and RTP port pools on ports that are free right now (no fixed port anywhere, so
//! tests run in parallel with each other and with anything else on the machine).

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, OnceLock};

use crate::media::codec::Codec;
use crate::media::ports::PortPool;
use crate::media::prompt::PromptLibrary;
use crate::media::prompt_cache::PcmCache;

/// The shipped prompts in PCMU, loaded once for every unit test in the process (and resampled
/// once per checkout: a debug build takes seconds over it).
pub fn shipped_prompts() -> Arc<PromptLibrary> {
    static LIBRARY: OnceLock<Arc<PromptLibrary>> = OnceLock::new();
    LIBRARY
        .get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let cache = PcmCache::new(&root.join("target/prompt-cache"));
            let library =
                PromptLibrary::load_cached(&root.join("prompts"), &[Codec::Pcmu], Some(&cache));
            Arc::new(library.expect("the shipped prompts load"))
        })
        .clone()
}

/// A directory under the system's temporary one, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicU16 = AtomicU16::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ivr-unit-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes 16-bit PCM `samples` (interleaved when `channels` > 1) as a WAV file.
pub fn write_wav(path: &Path, sample_rate: u32, channels: u16, samples: impl Iterator<Item = i16>) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create the WAV's directory");
    }
    let spec = hound::WavSpec {
        channels,
        sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).expect("create a WAV");
    for sample in samples {
        writer.write_sample(sample).expect("write a sample");
    }
    writer.finalize().expect("finish a WAV");
}

/// A pool of `pairs` RTP port pairs on loopback, all free when handed out. Blocks come from
/// below the kernel's ephemeral range, where no socket is bound by chance.
pub fn free_port_pool(pairs: u16) -> PortPool {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let base = 20_000 + (std::process::id() % 40) as u16 * 250;
    loop {
        let offset = NEXT.fetch_add(2 * pairs, Ordering::SeqCst) % 10_000;
        let first = base + offset;
        let last = first + 2 * pairs - 1;
        let all_free = (first..=last).all(|p| UdpSocket::bind((ip, p)).is_ok());
        if all_free {
            return PortPool::new(ip, first, last);
        }
    }
}

//! NTP timestamps (RFC 3550 §4) as RTCP carries them: the full 64 bits in a sender report, the
//! middle 32 in a report block's LSR.

use std::time::SystemTime;

/// Seconds between 1900 (NTP's epoch) and 1970.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// The 64-bit NTP timestamp of a wall-clock time.
pub fn ntp(at: SystemTime) -> u64 {
    let since = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let fraction = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
    (since.as_secs() + NTP_UNIX_OFFSET) << 32 | fraction
}

/// The middle 32 bits of an NTP timestamp, as LSR carries it.
pub fn ntp_middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

//! The few header fields SRTP needs, read without trusting a single length.

pub(super) const RTP_FIXED: usize = 12;
/// SRTCP encrypts after the first header and the sender's SSRC.
pub(super) const RTCP_FIXED: usize = 8;

/// The length of the RTP header (fixed part, CSRCs and extension) within `packet`, which
/// holds no tag; `None` when the header claims more than the packet has.
pub(super) fn rtp_header_len(packet: &[u8]) -> Option<usize> {
    if packet.len() < RTP_FIXED || packet[0] >> 6 != 2 {
        return None;
    }
    let csrcs = usize::from(packet[0] & 0x0f);
    let mut len = RTP_FIXED.checked_add(csrcs * 4)?;
    if packet[0] & 0x10 != 0 {
        let words = packet.get(len + 2..len + 4)?;
        let words = usize::from(u16::from_be_bytes([words[0], words[1]]));
        len = len.checked_add(4)?.checked_add(words * 4)?;
    }
    (len <= packet.len()).then_some(len)
}

pub(super) fn rtp_seq(packet: &[u8]) -> u16 {
    u16::from_be_bytes([packet[2], packet[3]])
}

/// The SSRC of an RTP packet (bytes 8..12) or of an RTCP packet's sender (bytes 4..8).
pub(super) fn ssrc_at(packet: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([packet[at], packet[at + 1], packet[at + 2], packet[at + 3]])
}

//! One direction of a call's SRTP and SRTCP: `Outbound` protects what we send with our key,
//! `Inbound` checks and decrypts what the caller sends with theirs.

use subtle::ConstantTimeEq;

use super::derive::{Labels, SessionKeys};
use super::header::{rtp_header_len, rtp_seq, ssrc_at, RTCP_FIXED};
use super::keys::{MasterKey, Suite};
use super::replay::ReplayWindow;
use super::SrtpError;

/// The E flag of the SRTCP index word: the packet is encrypted.
const ENCRYPTED: u32 = 1 << 31;
const SRTCP_INDEX_LEN: usize = 4;

pub struct Outbound {
    suite: Suite,
    rtp: SessionKeys,
    rtcp: SessionKeys,
    roc: u32,
    last_seq: Option<u16>,
    rtcp_index: u32,
}

impl Outbound {
    pub fn new(suite: Suite, master: &MasterKey) -> Outbound {
        Outbound {
            suite,
            rtp: SessionKeys::derive(master, Labels::Rtp),
            rtcp: SessionKeys::derive(master, Labels::Rtcp),
            roc: 0,
            last_seq: None,
            rtcp_index: 0,
        }
    }

    /// Encrypts the RTP packet in `buf[..len]` in place and appends its tag: the SRTP length.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let packet = buf.get(..len).ok_or(SrtpError::Malformed)?;
        let header_len = rtp_header_len(packet).ok_or(SrtpError::Malformed)?;
        let end = len
            .checked_add(self.suite.rtp_tag_len())
            .filter(|&end| end <= buf.len())
            .ok_or(SrtpError::NoRoom)?;
        let seq = rtp_seq(packet);
        let ssrc = ssrc_at(packet, 8);
        // Our sequence numbers only go forwards, so a smaller one means they wrapped.
        if self.last_seq.is_some_and(|last| seq < last) {
            self.roc = self.roc.wrapping_add(1);
        }
        self.last_seq = Some(seq);
        let index = (u64::from(self.roc) << 16) | u64::from(seq);
        self.rtp
            .apply_keystream(ssrc, index, &mut buf[header_len..len]);
        let tag = self.rtp.tag([&buf[..len], &self.roc.to_be_bytes()]);
        buf[len..end].copy_from_slice(&tag[..end - len]);
        Ok(end)
    }

    /// Encrypts the RTCP compound packet in `buf[..len]` in place and appends the SRTCP index
    /// and tag: the SRTCP length.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        if len < RTCP_FIXED || len > buf.len() {
            return Err(SrtpError::Malformed);
        }
        let signed = len + SRTCP_INDEX_LEN;
        let end = signed
            .checked_add(self.suite.rtcp_tag_len())
            .filter(|&end| end <= buf.len())
            .ok_or(SrtpError::NoRoom)?;
        let ssrc = ssrc_at(buf, 4);
        let index = self.rtcp_index;
        self.rtcp_index = (index + 1) & !ENCRYPTED;
        self.rtcp
            .apply_keystream(ssrc, u64::from(index), &mut buf[RTCP_FIXED..len]);
        buf[len..signed].copy_from_slice(&(index | ENCRYPTED).to_be_bytes());
        let tag = self.rtcp.tag([&buf[..signed], &[]]);
        buf[signed..end].copy_from_slice(&tag[..end - signed]);
        Ok(end)
    }
}

/// The caller's key as its `a=crypto` line gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundKey {
    pub master: MasterKey,
    /// The MKI the caller puts on every packet, when it declared one.
    pub mki: Option<Box<[u8]>>,
    /// Packets the key may protect before the caller must rekey.
    pub lifetime: u64,
}

/// A received SRTP packet that passed authentication and the replay check, not yet decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    ssrc: u32,
    index: u64,
    header_len: usize,
    plain_len: usize,
}

/// One stream being received: its SSRC and where its indexes are.
#[derive(Debug, Clone, Copy)]
struct Received {
    ssrc: u32,
    window: ReplayWindow,
}

pub struct Inbound {
    suite: Suite,
    rtp: SessionKeys,
    rtcp: SessionKeys,
    mki: Option<Box<[u8]>>,
    lifetime: u64,
    used: u64,
    stream: Option<Received>,
    control: Option<Received>,
}

impl Inbound {
    pub fn new(suite: Suite, key: &InboundKey) -> Inbound {
        Inbound {
            suite,
            rtp: SessionKeys::derive(&key.master, Labels::Rtp),
            rtcp: SessionKeys::derive(&key.master, Labels::Rtcp),
            mki: key.mki.clone(),
            lifetime: key.lifetime,
            used: 0,
            stream: None,
            control: None,
        }
    }

    /// A new key from a re-INVITE. The streams keep their indexes: the rollover counter
    /// belongs to the SSRC, not to the key.
    pub fn rekey(&mut self, suite: Suite, key: &InboundKey) {
        let (stream, control) = (self.stream, self.control);
        *self = Inbound::new(suite, key);
        self.stream = stream;
        self.control = control;
    }

    fn trailer(&self, tag_len: usize) -> usize {
        tag_len + self.mki.as_ref().map_or(0, |m| m.len())
    }

    /// Checks the MKI and the tag of the bytes before `signed_len`.
    fn verify(
        &self,
        keys: &SessionKeys,
        packet: &[u8],
        signed_len: usize,
        tag_len: usize,
        roc: Option<u32>,
    ) -> Result<(), SrtpError> {
        let mut at = signed_len;
        if let Some(mki) = &self.mki {
            if packet[at..at + mki.len()] != **mki {
                return Err(SrtpError::UnknownKey);
            }
            at += mki.len();
        }
        let roc = roc.map(u32::to_be_bytes);
        let tag = keys.tag([&packet[..signed_len], roc.as_ref().map_or(&[], |r| &r[..])]);
        if bool::from(packet[at..at + tag_len].ct_eq(&tag[..tag_len])) {
            Ok(())
        } else {
            Err(SrtpError::Forged)
        }
    }

    /// Authenticates an SRTP packet and checks it against the replay window, changing nothing:
    /// the caller decides (by its source) whether to `accept_rtp` it.
    pub fn check_rtp(&self, packet: &[u8]) -> Result<Checked, SrtpError> {
        if self.used >= self.lifetime {
            return Err(SrtpError::KeyExpired);
        }
        let tag_len = self.suite.rtp_tag_len();
        let plain_len = packet
            .len()
            .checked_sub(self.trailer(tag_len))
            .ok_or(SrtpError::Malformed)?;
        let header_len = rtp_header_len(&packet[..plain_len]).ok_or(SrtpError::Malformed)?;
        let ssrc = ssrc_at(packet, 8);
        let seq = rtp_seq(packet);
        let index = match self.stream {
            Some(known) if known.ssrc == ssrc => {
                let index = known.window.estimate(seq).ok_or(SrtpError::Replayed)?;
                if !known.window.fresh(index) {
                    return Err(SrtpError::Replayed);
                }
                index
            }
            // A stream we have not heard starts at rollover 0 (RFC 4568 §7.1.4 for SDES).
            _ => u64::from(seq),
        };
        self.verify(
            &self.rtp,
            packet,
            plain_len,
            tag_len,
            Some((index >> 16) as u32),
        )?;
        Ok(Checked {
            ssrc,
            index,
            header_len,
            plain_len,
        })
    }

    /// Takes a checked packet: records its index and decrypts it in place. Returns the length
    /// of the plain RTP packet at the start of `packet`.
    pub fn accept_rtp(&mut self, checked: &Checked, packet: &mut [u8]) -> usize {
        self.used += 1;
        match &mut self.stream {
            Some(known) if known.ssrc == checked.ssrc => known.window.accept(checked.index),
            other => {
                *other = Some(Received {
                    ssrc: checked.ssrc,
                    window: ReplayWindow::starting_at(checked.index),
                })
            }
        }
        self.rtp.apply_keystream(
            checked.ssrc,
            checked.index,
            &mut packet[checked.header_len..checked.plain_len],
        );
        checked.plain_len
    }

    /// Authenticates, replay-checks and decrypts an SRTCP packet in place: the length of the
    /// plain RTCP compound packet at its start.
    pub fn unprotect_rtcp(&mut self, packet: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.suite.rtcp_tag_len();
        let signed_len = packet
            .len()
            .checked_sub(self.trailer(tag_len))
            .filter(|&n| n >= RTCP_FIXED + SRTCP_INDEX_LEN)
            .ok_or(SrtpError::Malformed)?;
        let plain_len = signed_len - SRTCP_INDEX_LEN;
        let word = ssrc_at(packet, plain_len);
        let index = u64::from(word & !ENCRYPTED);
        let ssrc = ssrc_at(packet, 4);
        if let Some(known) = self.control.filter(|c| c.ssrc == ssrc) {
            if !known.window.fresh(index) {
                return Err(SrtpError::Replayed);
            }
        }
        self.verify(&self.rtcp, packet, signed_len, tag_len, None)?;
        match &mut self.control {
            Some(known) if known.ssrc == ssrc => known.window.accept(index),
            other => {
                *other = Some(Received {
                    ssrc,
                    window: ReplayWindow::starting_at(index),
                })
            }
        }
        if word & ENCRYPTED != 0 {
            self.rtcp
                .apply_keystream(ssrc, index, &mut packet[RTCP_FIXED..plain_len]);
        }
        Ok(plain_len)
    }
}

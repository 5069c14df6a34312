//! RTCP packets as bytes: the sender and receiver reports, SDES CNAME and BYE we write into a
//! caller's buffer, and a reader for a caller's compound packet that checks every length
//! before it trusts it (RFC 3550 A.2).

use thiserror::Error;

pub const SENDER_REPORT: u8 = 200;
pub const RECEIVER_REPORT: u8 = 201;
pub const SOURCE_DESCRIPTION: u8 = 202;
pub const GOODBYE: u8 = 203;

const HEADER: usize = 4;
const SENDER_INFO: usize = 20;
const REPORT_BLOCK: usize = 24;
const CNAME: u8 = 1;

/// One reception report block: what a receiver says of one source (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    pub ssrc: u32,
    /// Lost since the last report, in 256ths.
    pub fraction_lost: u8,
    /// Lost since the start; 24 bits, signed (duplicates can make it negative).
    pub cumulative_lost: i32,
    pub highest_seq: u32,
    /// Interarrival jitter in RTP timestamp units.
    pub jitter: u32,
    /// The middle 32 bits of the NTP time of the last sender report heard from `ssrc`.
    pub last_sr: u32,
    /// Since that report, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

/// What a sender report says of its sender (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    pub ntp: u64,
    pub rtp_timestamp: u32,
    pub packets: u32,
    pub octets: u32,
}

/// One thing a compound packet says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Sender { ssrc: u32, info: SenderInfo },
    Report { reporter: u32, block: ReportBlock },
    Goodbye { ssrc: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Malformed {
    #[error("not an RTCP compound packet starting with SR or RR")]
    NotReport,
    #[error("a length that runs past the packet")]
    Length,
    #[error("not version 2")]
    Version,
}

/// Reads a compound packet, handing each sender info, report block and BYE to `visit`. Nothing
/// is handed over unless the whole packet's lengths add up.
pub fn read(packet: &[u8], mut visit: impl FnMut(Part)) -> Result<(), Malformed> {
    let first_type = packet.get(1).copied().ok_or(Malformed::Length)?;
    if !matches!(first_type, SENDER_REPORT | RECEIVER_REPORT) || packet[0] & 0x20 != 0 {
        return Err(Malformed::NotReport);
    }
    for pass in [false, true] {
        let mut rest = packet;
        while !rest.is_empty() {
            let (header, body) = split_packet(rest)?;
            if pass {
                read_one(header, body, &mut visit)?;
            }
            rest = &rest[HEADER + body.len()..];
        }
    }
    Ok(())
}

/// The first packet of `data`: its header and its body (padding included).
fn split_packet(data: &[u8]) -> Result<(&[u8], &[u8]), Malformed> {
    if data.len() < HEADER {
        return Err(Malformed::Length);
    }
    if data[0] >> 6 != 2 {
        return Err(Malformed::Version);
    }
    let words = usize::from(u16::from_be_bytes([data[2], data[3]]));
    let body = words.checked_mul(4).ok_or(Malformed::Length)?;
    let end = HEADER.checked_add(body).ok_or(Malformed::Length)?;
    if end > data.len() {
        return Err(Malformed::Length);
    }
    Ok((&data[..HEADER], &data[HEADER..end]))
}

fn read_one(header: &[u8], body: &[u8], visit: &mut impl FnMut(Part)) -> Result<(), Malformed> {
    let count = usize::from(header[0] & 0x1f);
    match header[1] {
        SENDER_REPORT | RECEIVER_REPORT => {
            let reporter = be32(body, 0).ok_or(Malformed::Length)?;
            let mut at = 4;
            if header[1] == SENDER_REPORT {
                let info = SenderInfo {
                    ntp: u64::from(be32(body, 4).ok_or(Malformed::Length)?) << 32
                        | u64::from(be32(body, 8).ok_or(Malformed::Length)?),
                    rtp_timestamp: be32(body, 12).ok_or(Malformed::Length)?,
                    packets: be32(body, 16).ok_or(Malformed::Length)?,
                    octets: be32(body, 20).ok_or(Malformed::Length)?,
                };
                visit(Part::Sender {
                    ssrc: reporter,
                    info,
                });
                at += SENDER_INFO;
            }
            let needed = count
                .checked_mul(REPORT_BLOCK)
                .and_then(|n| n.checked_add(at))
                .ok_or(Malformed::Length)?;
            if needed > body.len() {
                return Err(Malformed::Length);
            }
            for block in body[at..needed].chunks_exact(REPORT_BLOCK) {
                visit(Part::Report {
                    reporter,
                    block: read_block(block),
                });
            }
        }
        GOODBYE => {
            for ssrc in body.chunks_exact(4).take(count) {
                visit(Part::Goodbye {
                    ssrc: u32::from_be_bytes([ssrc[0], ssrc[1], ssrc[2], ssrc[3]]),
                });
            }
        }
        _ => {}
    }
    Ok(())
}

fn read_block(b: &[u8]) -> ReportBlock {
    let word = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let lost = word(4) & 0x00ff_ffff;
    ReportBlock {
        ssrc: word(0),
        fraction_lost: b[4],
        // Sign-extend the 24-bit count.
        cumulative_lost: ((lost << 8) as i32) >> 8,
        highest_seq: word(8),
        jitter: word(12),
        last_sr: word(16),
        delay_since_last_sr: word(20),
    }
}

fn be32(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// Writes a compound packet into a caller's buffer; each step is refused (`None`) when it would
/// not fit, leaving what was written.
pub struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Writer<'a> {
    pub fn new(buf: &'a mut [u8]) -> Writer<'a> {
        Writer { buf, len: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// An SR when `info` is given, else an RR; with at most one report block.
    pub fn report(
        &mut self,
        ssrc: u32,
        info: Option<&SenderInfo>,
        block: Option<&ReportBlock>,
    ) -> Option<()> {
        let size = HEADER + 4 + info.map_or(0, |_| SENDER_INFO) + block.map_or(0, |_| REPORT_BLOCK);
        let kind = if info.is_some() {
            SENDER_REPORT
        } else {
            RECEIVER_REPORT
        };
        let out = self.reserve(size, kind, u8::from(block.is_some()))?;
        let mut at = HEADER;
        put32(out, &mut at, ssrc);
        if let Some(info) = info {
            put32(out, &mut at, (info.ntp >> 32) as u32);
            put32(out, &mut at, info.ntp as u32);
            put32(out, &mut at, info.rtp_timestamp);
            put32(out, &mut at, info.packets);
            put32(out, &mut at, info.octets);
        }
        if let Some(b) = block {
            put32(out, &mut at, b.ssrc);
            let lost = (b.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32) & 0x00ff_ffff;
            put32(out, &mut at, u32::from(b.fraction_lost) << 24 | lost);
            put32(out, &mut at, b.highest_seq);
            put32(out, &mut at, b.jitter);
            put32(out, &mut at, b.last_sr);
            put32(out, &mut at, b.delay_since_last_sr);
        }
        Some(())
    }

    /// SDES with one chunk: our CNAME, null-terminated and padded to a word.
    pub fn cname(&mut self, ssrc: u32, cname: &[u8]) -> Option<()> {
        let cname = &cname[..cname.len().min(255)];
        let items = (2 + cname.len() + 1).div_ceil(4) * 4;
        let out = self.reserve(HEADER + 4 + items, SOURCE_DESCRIPTION, 1)?;
        let mut at = HEADER;
        put32(out, &mut at, ssrc);
        out[at] = CNAME;
        out[at + 1] = cname.len() as u8;
        out[at + 2..at + 2 + cname.len()].copy_from_slice(cname);
        out[at + 2 + cname.len()..].fill(0);
        Some(())
    }

    pub fn goodbye(&mut self, ssrc: u32) -> Option<()> {
        let out = self.reserve(HEADER + 4, GOODBYE, 1)?;
        let mut at = HEADER;
        put32(out, &mut at, ssrc);
        Some(())
    }

    /// The next `size` bytes (a whole number of words) with their header written.
    fn reserve(&mut self, size: usize, kind: u8, count: u8) -> Option<&mut [u8]> {
        let end = self
            .len
            .checked_add(size)
            .filter(|&e| e <= self.buf.len())?;
        let out = &mut self.buf[self.len..end];
        out[0] = 0x80 | count;
        out[1] = kind;
        out[2..4].copy_from_slice(&((size / 4 - 1) as u16).to_be_bytes());
        self.len = end;
        Some(out)
    }
}

fn put32(out: &mut [u8], at: &mut usize, value: u32) {
    out[*at..*at + 4].copy_from_slice(&value.to_be_bytes());
    *at += 4;
}

/// Whether a packet can be an RTCP compound packet (SRTCP keeps this header in clear): version
/// 2, starting with an SR or RR.
pub fn starts_with_report(packet: &[u8]) -> bool {
    packet.len() >= 8 && packet[0] >> 6 == 2 && matches!(packet[1], SENDER_REPORT | RECEIVER_REPORT)
}

/// Whether a packet on a muxed port is RTCP (RFC 5761 §4): its second byte is an RTCP type.
pub fn is_rtcp(packet: &[u8]) -> bool {
    packet.len() >= 8 && (192..=223).contains(&packet[1])
}

#[cfg(test)]
mod tests;

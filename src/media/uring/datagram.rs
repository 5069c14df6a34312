//! What a multishot receive leaves in a buffer: the kernel's header (`io_uring_recvmsg_out`),
//! the source address and the control messages in fields of the sizes we asked for, then the
//! datagram. Read here with no unsafe code: every offset is checked against the buffer.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::time::{Duration, SystemTime};

/// Room for the source address: a `sockaddr_in6` (28 bytes), rounded up to keep the control
/// messages 8-byte aligned.
pub(super) const NAME_LEN: usize = 32;
/// Room for one `SCM_TIMESTAMPNS` control message (`CMSG_SPACE` of a `timespec`).
pub(super) const CONTROL_LEN: usize = 32;
/// `io_uring_recvmsg_out`: name, control and payload lengths, then flags, as `u32`s.
const HEADER_LEN: usize = 16;
const PAYLOAD_AT: usize = HEADER_LEN + NAME_LEN + CONTROL_LEN;
/// A `cmsghdr` on a 64-bit Linux: `cmsg_len` (usize), level and type (i32 each).
const CMSG_HEADER_LEN: usize = 16;

/// One datagram found in a buffer.
#[derive(Debug, PartialEq)]
pub(super) struct Datagram {
    pub(super) payload: Range<usize>,
    pub(super) from: SocketAddr,
    /// The kernel's arrival stamp, if it stamped it.
    pub(super) at: Option<SystemTime>,
}

fn u32_at(buffer: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(buffer.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(buffer: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(buffer.get(at..at + 8)?.try_into().ok()?))
}

/// The datagram in `buffer`, or `None` when it was cut short (longer than the buffer) or has
/// no source we understand.
pub(super) fn parse(buffer: &[u8]) -> Option<Datagram> {
    let name_len = u32_at(buffer, 0)? as usize;
    let control_len = u32_at(buffer, 4)? as usize;
    let payload_len = u32_at(buffer, 8)? as usize;
    let flags = u32_at(buffer, 12)?;
    if flags & libc::MSG_TRUNC as u32 != 0 || name_len > NAME_LEN {
        return None;
    }
    let payload = PAYLOAD_AT..PAYLOAD_AT.checked_add(payload_len)?;
    if payload.end > buffer.len() {
        return None;
    }
    let from = source(buffer.get(HEADER_LEN..HEADER_LEN + name_len)?)?;
    let control_start = HEADER_LEN + NAME_LEN;
    let control = buffer.get(control_start..control_start + control_len.min(CONTROL_LEN))?;
    Some(Datagram {
        payload,
        from,
        at: arrival(control),
    })
}

fn source(name: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes(name.get(0..2)?.try_into().ok()?);
    let port = u16::from_be_bytes(name.get(2..4)?.try_into().ok()?);
    match i32::from(family) {
        libc::AF_INET => {
            let ip: [u8; 4] = name.get(4..8)?.try_into().ok()?;
            Some(SocketAddr::from((Ipv4Addr::from(ip), port)))
        }
        libc::AF_INET6 => {
            let ip: [u8; 16] = name.get(8..24)?.try_into().ok()?;
            Some(SocketAddr::from((Ipv6Addr::from(ip), port)))
        }
        _ => None,
    }
}

/// The `SCM_TIMESTAMPNS` stamp among the control messages.
fn arrival(control: &[u8]) -> Option<SystemTime> {
    let mut at = 0;
    while at + CMSG_HEADER_LEN <= control.len() {
        let len = u64_at(control, at)? as usize;
        let level = u32_at(control, at + 8)? as i32;
        let kind = u32_at(control, at + 12)? as i32;
        if len < CMSG_HEADER_LEN {
            return None;
        }
        if level == libc::SOL_SOCKET && kind == libc::SCM_TIMESTAMPNS {
            let seconds = u64_at(control, at + CMSG_HEADER_LEN)?;
            let nanos = u64_at(control, at + CMSG_HEADER_LEN + 8)?;
            let since_epoch = Duration::new(seconds, u32::try_from(nanos).ok()?);
            return SystemTime::UNIX_EPOCH.checked_add(since_epoch);
        }
        at = at.checked_add(len.next_multiple_of(8))?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffer(name: &[u8], control: &[u8], payload: &[u8], flags: u32) -> Vec<u8> {
        let mut b = vec![0u8; 2048];
        b[0..4].copy_from_slice(&(name.len() as u32).to_ne_bytes());
        b[4..8].copy_from_slice(&(control.len() as u32).to_ne_bytes());
        b[8..12].copy_from_slice(&(payload.len() as u32).to_ne_bytes());
        b[12..16].copy_from_slice(&flags.to_ne_bytes());
        b[HEADER_LEN..][..name.len()].copy_from_slice(name);
        b[HEADER_LEN + NAME_LEN..][..control.len()].copy_from_slice(control);
        b[PAYLOAD_AT..][..payload.len()].copy_from_slice(payload);
        b
    }

    fn v4_name() -> Vec<u8> {
        let mut name = vec![0u8; 16];
        name[0..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        name[2..4].copy_from_slice(&5004u16.to_be_bytes());
        name[4..8].copy_from_slice(&[127, 0, 0, 9]);
        name
    }

    fn stamp(seconds: u64, nanos: u64) -> Vec<u8> {
        let mut c = Vec::new();
        c.extend_from_slice(&32u64.to_ne_bytes());
        c.extend_from_slice(&libc::SOL_SOCKET.to_ne_bytes());
        c.extend_from_slice(&libc::SCM_TIMESTAMPNS.to_ne_bytes());
        c.extend_from_slice(&seconds.to_ne_bytes());
        c.extend_from_slice(&nanos.to_ne_bytes());
        c
    }

    #[test]
    fn a_datagram_with_its_source_and_arrival() {
        let b = buffer(&v4_name(), &stamp(1_700_000_000, 5), b"rtp", 0);
        let d = parse(&b).unwrap();
        assert_eq!(&b[d.payload.clone()], b"rtp");
        assert_eq!(d.from, "127.0.0.9:5004".parse().unwrap());
        let at = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        assert_eq!(d.at, Some(at));
    }

    #[test]
    fn an_ipv6_source_and_no_stamp() {
        let mut name = vec![0u8; 28];
        name[0..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        name[2..4].copy_from_slice(&40000u16.to_be_bytes());
        name[23] = 1;
        let d = parse(&buffer(&name, &[], b"x", 0)).unwrap();
        assert_eq!(d.from, "[::1]:40000".parse().unwrap());
        assert_eq!(d.at, None);
    }

    #[test]
    fn cut_short_lying_or_strange_buffers_are_refused() {
        let truncated = buffer(&v4_name(), &[], b"rtp", libc::MSG_TRUNC as u32);
        assert_eq!(parse(&truncated), None);
        let mut lying = buffer(&v4_name(), &[], b"rtp", 0);
        lying[8..12].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(parse(&lying), None);
        let mut unknown = v4_name();
        unknown[0..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
        assert_eq!(parse(&buffer(&unknown, &[], b"rtp", 0)), None);
        assert_eq!(parse(&[0u8; 8]), None);
        let mut zero_cmsg = stamp(1, 1);
        zero_cmsg[0..8].copy_from_slice(&0u64.to_ne_bytes());
        let d = parse(&buffer(&v4_name(), &zero_cmsg, b"rtp", 0)).unwrap();
        assert_eq!(d.at, None, "a control message of length 0 ends the walk");
    }
}

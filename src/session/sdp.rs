//! A small, defensive SDP (RFC 4566) parser: it keeps what offer/answer needs and refuses
//! bodies whose size or shape no honest phone sends.

use std::net::IpAddr;

use thiserror::Error;

pub const MAX_SDP_BYTES: usize = 16 * 1024;
const MAX_LINE: usize = 1024;
const MAX_MEDIA: usize = 16;
const MAX_FORMATS: usize = 64;
/// More `a=crypto` lines than suites exist is not an honest offer.
const MAX_CRYPTO: usize = 16;

#[derive(Debug, Error, PartialEq)]
#[error("malformed SDP: {0}")]
pub struct SdpError(pub String);

fn bad(why: impl Into<String>) -> SdpError {
    SdpError(why.into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn parse(attr: &str) -> Option<Direction> {
        match attr {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    pub fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction an answer gives to an offered one (RFC 3264 §6.1).
    pub fn reversed(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }

    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RtpMap {
    pub payload_type: u8,
    pub encoding: String,
    pub clock_rate: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Media {
    pub kind: String,
    pub port: u16,
    pub proto: String,
    pub formats: Vec<String>,
    pub connection: Option<IpAddr>,
    pub rtpmaps: Vec<RtpMap>,
    pub direction: Option<Direction>,
    /// The values of the `a=crypto` lines, in the offerer's order of preference.
    pub crypto: Vec<String>,
    /// `a=rtcp-mux` (RFC 5761): RTCP shares the RTP port.
    pub rtcp_mux: bool,
    /// `a=rtcp:port [IN IP4 addr]` (RFC 3605): RTCP elsewhere than the next port up.
    pub rtcp: Option<(u16, Option<IpAddr>)>,
}

impl Media {
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| f.parse().ok())
    }

    pub fn rtpmap(&self, pt: u8) -> Option<&RtpMap> {
        self.rtpmaps.iter().find(|m| m.payload_type == pt)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SessionDescription {
    pub connection: Option<IpAddr>,
    pub direction: Option<Direction>,
    pub media: Vec<Media>,
}

impl SessionDescription {
    pub fn parse(body: &[u8]) -> Result<SessionDescription, SdpError> {
        if body.len() > MAX_SDP_BYTES {
            return Err(bad(format!(
                "{} bytes is over the {MAX_SDP_BYTES} byte limit",
                body.len()
            )));
        }
        let text = std::str::from_utf8(body).map_err(|_| bad("not UTF-8"))?;
        let mut sdp = SessionDescription {
            connection: None,
            direction: None,
            media: Vec::new(),
        };
        let mut saw_version = false;
        for raw in text.split('\n') {
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.is_empty() {
                continue;
            }
            if line.len() > MAX_LINE {
                return Err(bad(format!("a line of {} bytes", line.len())));
            }
            let (kind, value) = line
                .split_once('=')
                .filter(|(k, _)| k.len() == 1)
                .ok_or_else(|| bad(format!("line without `x=`: {:.40}", line)))?;
            match kind {
                "v" => {
                    if value != "0" {
                        return Err(bad("v= must be 0"));
                    }
                    saw_version = true;
                }
                "c" => {
                    let ip = parse_connection(value)?;
                    match sdp.media.last_mut() {
                        Some(m) => m.connection = Some(ip),
                        None => sdp.connection = Some(ip),
                    }
                }
                "m" => {
                    if sdp.media.len() == MAX_MEDIA {
                        return Err(bad(format!("more than {MAX_MEDIA} m= lines")));
                    }
                    sdp.media.push(parse_media(value)?);
                }
                "a" => {
                    let (name, arg) = value.split_once(':').unwrap_or((value, ""));
                    if let Some(direction) = Direction::parse(name) {
                        match sdp.media.last_mut() {
                            Some(m) => m.direction = Some(direction),
                            None => sdp.direction = Some(direction),
                        }
                    } else if name == "crypto" {
                        if let Some(m) = sdp.media.last_mut() {
                            if m.crypto.len() == MAX_CRYPTO {
                                return Err(bad(format!("more than {MAX_CRYPTO} a=crypto lines")));
                            }
                            m.crypto.push(arg.to_string());
                        }
                    } else if name == "rtcp-mux" {
                        if let Some(m) = sdp.media.last_mut() {
                            m.rtcp_mux = true;
                        }
                    } else if name == "rtcp" {
                        if let Some(m) = sdp.media.last_mut() {
                            m.rtcp = Some(parse_rtcp(arg)?);
                        }
                    } else if name == "rtpmap" {
                        if let (Some(m), Some(map)) = (sdp.media.last_mut(), parse_rtpmap(arg)) {
                            if m.rtpmaps.len() < MAX_FORMATS {
                                m.rtpmaps.push(map);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        if !saw_version {
            return Err(bad("no v= line"));
        }
        Ok(sdp)
    }

    pub fn media_connection(&self, media: &Media) -> Option<IpAddr> {
        media.connection.or(self.connection)
    }

    pub fn media_direction(&self, media: &Media) -> Direction {
        media
            .direction
            .or(self.direction)
            .unwrap_or(Direction::SendRecv)
    }
}

fn parse_connection(value: &str) -> Result<IpAddr, SdpError> {
    let mut parts = value.split_ascii_whitespace();
    let (Some("IN"), Some(family), Some(addr)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad(format!("c= {:.40}", value)));
    };
    // Multicast forms carry `/ttl`; we only care about the address.
    let addr = addr.split('/').next().unwrap_or(addr);
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| bad(format!("c= address {:.40}", addr)))?;
    match (family, ip) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Ok(ip),
        _ => Err(bad(format!("c= family {family} does not match {ip}"))),
    }
}

fn parse_media(value: &str) -> Result<Media, SdpError> {
    let mut parts = value.split_ascii_whitespace();
    let kind = parts.next().ok_or_else(|| bad("empty m="))?;
    let port = parts.next().ok_or_else(|| bad("m= without port"))?;
    // `port/count` (RFC 4566 §5.14); we take the first port.
    let port: u16 = port
        .split('/')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| bad(format!("m= port {:.20}", port)))?;
    let proto = parts.next().ok_or_else(|| bad("m= without proto"))?;
    let formats: Vec<String> = parts.map(str::to_string).collect();
    if formats.is_empty() {
        return Err(bad("m= without formats"));
    }
    if formats.len() > MAX_FORMATS {
        return Err(bad(format!("m= with {} formats", formats.len())));
    }
    Ok(Media {
        kind: kind.to_string(),
        port,
        proto: proto.to_string(),
        formats,
        connection: None,
        rtpmaps: Vec::new(),
        direction: None,
        crypto: Vec::new(),
        rtcp_mux: false,
        rtcp: None,
    })
}

fn parse_rtcp(arg: &str) -> Result<(u16, Option<IpAddr>), SdpError> {
    let (port, address) = arg.split_once(' ').unwrap_or((arg, ""));
    let port = port
        .parse()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| bad(format!("a=rtcp port {:.20}", port)))?;
    let address = match address.trim() {
        "" => None,
        connection => Some(parse_connection(connection)?),
    };
    Ok((port, address))
}

fn parse_rtpmap(arg: &str) -> Option<RtpMap> {
    let (pt, rest) = arg.split_once(' ')?;
    let mut enc = rest.trim().split('/');
    Some(RtpMap {
        payload_type: pt.parse().ok().filter(|pt: &u8| *pt < 128)?,
        encoding: enc.next()?.to_string(),
        clock_rate: enc.next()?.parse().ok()?,
    })
}

//! RFC 3264 offer/answer for one audio stream: choose our preferred codec among the offered
//! ones, keep the offerer's payload type numbers, pair telephone-event at the codec's clock rate
//! and mirror the direction. Every other stream is declined with port 0.

use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

use super::sdp::{Direction, Media, SessionDescription};
use crate::media::codec::{Codec, FRAME_MS};

/// Our side of the stream, as written into SDP.
#[derive(Debug, Clone)]
pub struct LocalMedia {
    pub ip: IpAddr,
    pub port: u16,
    pub session_id: u64,
    /// `o=` version: must grow each time we send a changed description.
    pub version: u64,
    /// Whether we take RFC 4733 telephone-events.
    pub telephone_event: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Negotiated {
    pub codec: Codec,
    pub payload_type: u8,
    pub telephone_event: Option<u8>,
    pub remote: Option<SocketAddr>,
    /// Our direction.
    pub direction: Direction,
    pub peer_sends: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Rejection {
    /// 400: the body cannot be read.
    Malformed(String),
    /// 488 with a Warning (RFC 3261 §20.43 codes 304/305).
    NotAcceptable { warn_code: u16, text: String },
}

impl From<super::sdp::SdpError> for Rejection {
    fn from(e: super::sdp::SdpError) -> Self {
        Rejection::Malformed(e.0)
    }
}

const TELEPHONE_EVENT: &str = "telephone-event";

fn is_rtp_profile(proto: &str) -> bool {
    matches!(proto, "RTP/AVP" | "RTP/AVPF")
}

/// The payload type in `media` that carries `codec`, if offered.
fn find_codec(media: &Media, codec: Codec) -> Option<u8> {
    media.payload_types().find(|&pt| match media.rtpmap(pt) {
        Some(map) => {
            map.encoding.eq_ignore_ascii_case(codec.sdp_name())
                && map.clock_rate == codec.clock_rate()
        }
        None => codec.static_payload_type() == Some(pt),
    })
}

fn find_telephone_event(media: &Media, clock_rate: u32) -> Option<u8> {
    media.payload_types().find(|&pt| {
        media.rtpmap(pt).is_some_and(|m| {
            m.encoding.eq_ignore_ascii_case(TELEPHONE_EVENT) && m.clock_rate == clock_rate
        })
    })
}

fn remote_of(sdp: &SessionDescription, media: &Media) -> Option<SocketAddr> {
    let ip = sdp.media_connection(media)?;
    (!ip.is_unspecified() && media.port != 0).then(|| SocketAddr::new(ip, media.port))
}

/// Answers an offer, or says why not.
pub fn answer(
    offer: &[u8],
    preferences: &[Codec],
    local: &LocalMedia,
) -> Result<(Negotiated, String), Rejection> {
    let sdp = SessionDescription::parse(offer)?;
    if sdp.media.is_empty() {
        return Err(Rejection::Malformed("offer has no m= line".into()));
    }
    let mut chosen: Option<(usize, Negotiated)> = None;
    for (index, media) in sdp.media.iter().enumerate() {
        if chosen.is_some()
            || media.kind != "audio"
            || media.port == 0
            || !is_rtp_profile(&media.proto)
        {
            continue;
        }
        let Some((codec, pt)) = preferences
            .iter()
            .find_map(|&c| find_codec(media, c).map(|pt| (c, pt)))
        else {
            continue;
        };
        let offered = sdp.media_direction(media);
        let remote = remote_of(&sdp, media);
        let direction = offered.reversed();
        chosen = Some((
            index,
            Negotiated {
                codec,
                payload_type: pt,
                telephone_event: find_telephone_event(media, codec.clock_rate())
                    .filter(|_| local.telephone_event),
                remote,
                direction,
                peer_sends: offered.sends() && remote.is_some(),
            },
        ));
    }
    let Some((chosen_index, negotiated)) = chosen else {
        let has_audio = sdp.media.iter().any(|m| m.kind == "audio" && m.port != 0);
        return Err(if has_audio {
            Rejection::NotAcceptable {
                warn_code: 305,
                text: "Incompatible media format".into(),
            }
        } else {
            Rejection::NotAcceptable {
                warn_code: 304,
                text: "Media type not available".into(),
            }
        });
    };
    let mut body = session_header(local);
    for (index, media) in sdp.media.iter().enumerate() {
        if index == chosen_index {
            write_audio(&mut body, local.port, &media.proto, &negotiated);
        } else {
            let _ = write!(
                body,
                "m={} 0 {} {}\r\n",
                media.kind, media.proto, media.formats[0]
            );
        }
    }
    Ok((negotiated, body))
}

/// Our offer when the INVITE came without one: every codec we take, plus telephone-event at
/// each clock rate in use.
pub fn offer(preferences: &[Codec], local: &LocalMedia) -> String {
    let mut body = session_header(local);
    let mut pts: Vec<u8> = preferences
        .iter()
        .map(|c| c.default_payload_type())
        .collect();
    let mut rates: Vec<u32> = preferences.iter().map(|c| c.clock_rate()).collect();
    rates.sort_unstable();
    rates.dedup();
    if !local.telephone_event {
        rates.clear();
    }
    let events: Vec<(u8, u32)> = rates
        .iter()
        .enumerate()
        .map(|(i, &r)| (101 + i as u8, r))
        .collect();
    pts.extend(events.iter().map(|e| e.0));
    let list: Vec<String> = pts.iter().map(u8::to_string).collect();
    let _ = write!(
        body,
        "m=audio {} RTP/AVP {}\r\n",
        local.port,
        list.join(" ")
    );
    for c in preferences {
        let _ = write!(
            body,
            "a=rtpmap:{} {}/{}{}\r\n",
            c.default_payload_type(),
            c.sdp_name(),
            c.clock_rate(),
            c.channels_suffix()
        );
    }
    for (pt, rate) in events {
        let _ = write!(
            body,
            "a=rtpmap:{pt} {TELEPHONE_EVENT}/{rate}\r\na=fmtp:{pt} 0-16\r\n"
        );
    }
    let _ = write!(body, "a=ptime:{FRAME_MS}\r\na=sendrecv\r\n");
    body
}

/// Reads the answer to our offer (late offer: it arrives in the ACK).
pub fn read_answer(
    answer: &[u8],
    preferences: &[Codec],
    telephone_event: bool,
) -> Result<Negotiated, Rejection> {
    let sdp = SessionDescription::parse(answer)?;
    let media = sdp
        .media
        .iter()
        .find(|m| m.kind == "audio" && m.port != 0)
        .ok_or_else(|| Rejection::NotAcceptable {
            warn_code: 304,
            text: "Media type not available".into(),
        })?;
    let (codec, pt) = media
        .payload_types()
        .find_map(|pt| {
            preferences
                .iter()
                .find(|&&c| find_codec(media, c) == Some(pt))
                .map(|&c| (c, pt))
        })
        .ok_or(Rejection::NotAcceptable {
            warn_code: 305,
            text: "Incompatible media format".into(),
        })?;
    let direction = sdp.media_direction(media);
    let remote = remote_of(&sdp, media);
    Ok(Negotiated {
        codec,
        payload_type: pt,
        telephone_event: find_telephone_event(media, codec.clock_rate())
            .filter(|_| telephone_event),
        remote,
        // The answer states the peer's view; ours is the reverse of it.
        direction: direction.reversed(),
        peer_sends: direction.sends() && remote.is_some(),
    })
}

fn session_header(local: &LocalMedia) -> String {
    let family = if local.ip.is_ipv4() { "IP4" } else { "IP6" };
    format!(
        "v=0\r\no=ivr {} {} IN {family} {}\r\ns=ivr\r\nc=IN {family} {}\r\nt=0 0\r\n",
        local.session_id, local.version, local.ip, local.ip
    )
}

fn write_audio(body: &mut String, port: u16, proto: &str, n: &Negotiated) {
    let mut formats = n.payload_type.to_string();
    if let Some(te) = n.telephone_event {
        let _ = write!(formats, " {te}");
    }
    let _ = write!(body, "m=audio {port} {proto} {formats}\r\n");
    let _ = write!(
        body,
        "a=rtpmap:{} {}/{}{}\r\n",
        n.payload_type,
        n.codec.sdp_name(),
        n.codec.clock_rate(),
        n.codec.channels_suffix()
    );
    if let Some(te) = n.telephone_event {
        let _ = write!(
            body,
            "a=rtpmap:{te} {TELEPHONE_EVENT}/{}\r\na=fmtp:{te} 0-16\r\n",
            n.codec.clock_rate()
        );
    }
    let _ = write!(
        body,
        "a=ptime:{FRAME_MS}\r\na={}\r\n",
        n.direction.attribute()
    );
}

#[cfg(test)]
mod tests;

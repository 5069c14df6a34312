//! RFC 3264 offer/answer for one audio stream: choose our preferred codec among the offered
//! ones, keep the offerer's payload type numbers, pair telephone-event at the codec's clock rate
//! and mirror the direction. Every other stream is declined with port 0. SRTP is keyed by SDES
//! (`a=crypto`) under the operator's policy.

use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::sdes;
use super::sdp::{Direction, Media, SessionDescription};
use crate::media::codec::{Codec, FRAME_MS};
use crate::media::srtp::{MasterKey, SrtpKeys, Suite};

/// Whether calls must, may or must not encrypt their media.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encryption {
    Off,
    #[default]
    Optional,
    Mandatory,
}

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
    pub encryption: Encryption,
    /// SDES keys may be read from and written into this SDP: it travels over TLS, or the
    /// operator allows keys in clear signalling.
    pub keys_may_travel: bool,
    /// What we encrypt with: one key per call, kept across re-INVITEs.
    pub key: MasterKey,
}

/// The tag of the one `a=crypto` line we offer.
const OFFER_TAG: u32 = 1;
const OFFER_SUITE: Suite = Suite::AesCm128HmacSha1_80;

#[derive(Debug, Clone, PartialEq)]
pub struct Negotiated {
    pub codec: Codec,
    pub payload_type: u8,
    pub telephone_event: Option<u8>,
    pub remote: Option<SocketAddr>,
    /// Our direction.
    pub direction: Direction,
    pub peer_sends: bool,
    pub srtp: Option<SrtpKeys>,
    /// Why an offer's `a=crypto` went unused when plain RTP was answered instead.
    pub crypto_declined: Option<String>,
    /// RTCP travels on the RTP port both ways (RFC 5761).
    pub rtcp_mux: bool,
    /// Where the peer takes RTCP when it is not muxed.
    pub remote_rtcp: Option<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Rejection {
    /// 400: the body cannot be read.
    Malformed(String),
    /// 488 with a Warning (RFC 3261 §20.43 codes 304, 305, 399).
    NotAcceptable { warn_code: u16, text: String },
}

impl From<super::sdp::SdpError> for Rejection {
    fn from(e: super::sdp::SdpError) -> Self {
        Rejection::Malformed(e.0)
    }
}

const TELEPHONE_EVENT: &str = "telephone-event";

fn is_rtp_profile(proto: &str) -> bool {
    matches!(proto, "RTP/AVP" | "RTP/AVPF") || is_secure_profile(proto)
}

fn is_secure_profile(proto: &str) -> bool {
    matches!(proto, "RTP/SAVP" | "RTP/SAVPF")
}

/// What SRTP an offered stream gets: keys and the tag to answer with, plain RTP (with the reason
/// an `a=crypto` was not used), or a refusal saying why.
enum Security {
    Srtp(u32, SrtpKeys),
    Plain(Option<String>),
}

fn security(media: &Media, local: &LocalMedia) -> Result<Security, String> {
    let savp = is_secure_profile(&media.proto);
    let mandatory = local.encryption == Encryption::Mandatory;
    if local.encryption == Encryption::Off {
        return match savp {
            true => Err("SRTP is turned off here (rtp.encryption = off)".into()),
            false => Ok(Security::Plain(None)),
        };
    }
    if media.crypto.is_empty() {
        return match (savp, mandatory) {
            (true, _) => Err(format!(
                "{} without a=crypto: only SDES keys are taken",
                media.proto
            )),
            (false, true) => {
                Err("encryption is mandatory here and the offer has no a=crypto".into())
            }
            (false, false) => Ok(Security::Plain(None)),
        };
    }
    if !local.keys_may_travel {
        let why = "SDES keys came over plain SIP; use TLS or set rtp.sdes_over_plain_sip = true";
        return match savp || mandatory {
            true => Err(why.into()),
            false => Ok(Security::Plain(Some(why.into()))),
        };
    }
    let mut first_refusal = None;
    for line in &media.crypto {
        match sdes::parse(line) {
            Ok(c) => {
                let keys = SrtpKeys {
                    suite: c.suite,
                    outbound: local.key.clone(),
                    inbound: c.key,
                };
                return Ok(Security::Srtp(c.tag, keys));
            }
            Err(why) => {
                first_refusal.get_or_insert(why);
            }
        }
    }
    let why = format!("no usable a=crypto: {}", first_refusal.unwrap_or_default());
    match savp || mandatory {
        true => Err(why),
        false => Ok(Security::Plain(Some(why))),
    }
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

/// The next port up from RTP, unless `a=rtcp` says otherwise.
fn remote_rtcp_of(remote: Option<SocketAddr>, media: &Media) -> Option<SocketAddr> {
    let rtp = remote?;
    match media.rtcp {
        Some((port, ip)) => Some(SocketAddr::new(ip.unwrap_or(rtp.ip()), port)),
        None => rtp
            .port()
            .checked_add(1)
            .map(|p| SocketAddr::new(rtp.ip(), p)),
    }
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
    let mut chosen: Option<(usize, Negotiated, Option<u32>)> = None;
    let mut refusal = None;
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
        let (tag, srtp, crypto_declined) = match security(media, local) {
            Ok(Security::Srtp(tag, keys)) => (Some(tag), Some(keys), None),
            Ok(Security::Plain(why)) => (None, None, why),
            Err(why) => {
                refusal.get_or_insert(why);
                continue;
            }
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
                srtp,
                crypto_declined,
                rtcp_mux: media.rtcp_mux,
                remote_rtcp: remote_rtcp_of(remote, media),
            },
            tag,
        ));
    }
    let Some((chosen_index, negotiated, tag)) = chosen else {
        if let Some(text) = refusal {
            return Err(Rejection::NotAcceptable {
                warn_code: 399,
                text,
            });
        }
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
            write_audio(&mut body, local.port, &media.proto, &negotiated, tag);
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

/// Whether our offer carries our key, and on which profile.
fn offer_profile(local: &LocalMedia) -> Result<(&'static str, bool), Rejection> {
    match (local.encryption, local.keys_may_travel) {
        (Encryption::Off, _) => Ok(("RTP/AVP", false)),
        (Encryption::Optional, false) => Ok(("RTP/AVP", false)),
        (Encryption::Optional, true) => Ok(("RTP/AVP", true)),
        (Encryption::Mandatory, true) => Ok(("RTP/SAVP", true)),
        (Encryption::Mandatory, false) => Err(Rejection::NotAcceptable {
            warn_code: 399,
            text: "encryption is mandatory and SDES keys may not travel over plain SIP".into(),
        }),
    }
}

/// Our offer when the INVITE came without one: every codec we take, plus telephone-event at
/// each clock rate in use, and our key when the policy and the signalling allow it.
pub fn offer(preferences: &[Codec], local: &LocalMedia) -> Result<String, Rejection> {
    let (profile, keyed) = offer_profile(local)?;
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
        "m=audio {} {profile} {}\r\n",
        local.port,
        list.join(" ")
    );
    if keyed {
        body.push_str(&sdes::attribute(OFFER_TAG, OFFER_SUITE, &local.key));
    }
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
    Ok(body)
}

/// Reads the answer to our offer (late offer: it arrives in the ACK).
pub fn read_answer(
    answer: &[u8],
    preferences: &[Codec],
    local: &LocalMedia,
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
    let srtp = answered_keys(media, local).map_err(|text| Rejection::NotAcceptable {
        warn_code: 399,
        text,
    })?;
    let direction = sdp.media_direction(media);
    let remote = remote_of(&sdp, media);
    Ok(Negotiated {
        codec,
        payload_type: pt,
        telephone_event: find_telephone_event(media, codec.clock_rate())
            .filter(|_| local.telephone_event),
        remote,
        // The answer states the peer's view; ours is the reverse of it.
        direction: direction.reversed(),
        peer_sends: direction.sends() && remote.is_some(),
        srtp,
        crypto_declined: None,
        // We offer no `a=rtcp-mux`, so an answer may not mux (RFC 5761 §5.1.1).
        rtcp_mux: false,
        remote_rtcp: remote_rtcp_of(remote, media),
    })
}

/// The caller's key from its answer to our keyed offer: the line with our tag and suite.
fn answered_keys(media: &Media, local: &LocalMedia) -> Result<Option<SrtpKeys>, String> {
    let (_, keyed) = offer_profile(local).map_err(|_| "we could not offer SRTP".to_string())?;
    if !keyed {
        return Ok(None);
    }
    let Some(line) = media.crypto.first() else {
        return match local.encryption {
            Encryption::Mandatory => {
                Err("the answer has no a=crypto and encryption is mandatory".into())
            }
            _ => Ok(None),
        };
    };
    let crypto = sdes::parse(line)?;
    if (crypto.tag, crypto.suite) != (OFFER_TAG, OFFER_SUITE) {
        return Err("the answer's a=crypto is not the one we offered".into());
    }
    Ok(Some(SrtpKeys {
        suite: crypto.suite,
        outbound: local.key.clone(),
        inbound: crypto.key,
    }))
}

fn session_header(local: &LocalMedia) -> String {
    let family = if local.ip.is_ipv4() { "IP4" } else { "IP6" };
    format!(
        "v=0\r\no=ivr {} {} IN {family} {}\r\ns=ivr\r\nc=IN {family} {}\r\nt=0 0\r\n",
        local.session_id, local.version, local.ip, local.ip
    )
}

fn write_audio(body: &mut String, port: u16, proto: &str, n: &Negotiated, tag: Option<u32>) {
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
    if let (Some(tag), Some(srtp)) = (tag, &n.srtp) {
        body.push_str(&sdes::attribute(tag, srtp.suite, &srtp.outbound));
    }
    if n.rtcp_mux {
        body.push_str("a=rtcp-mux\r\n");
    }
    let _ = write!(
        body,
        "a=ptime:{FRAME_MS}\r\na={}\r\n",
        n.direction.attribute()
    );
}

#[cfg(test)]
mod encryption_tests;
#[cfg(test)]
mod tests;

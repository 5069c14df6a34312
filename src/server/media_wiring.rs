//! From a negotiated session to a stream's parameters, and the rules on where media may go.

use std::net::{IpAddr, SocketAddr};

use crate::config::InbandMode;
use crate::media::codec::Codec;
use crate::media::reach::may_send_to;
use crate::media::stream::MediaParams;
use crate::session::negotiate::Negotiated;

/// `signalled_from`: where the SDP came from, for `reach`'s rule on where its addresses may
/// point; `None` for a peer we chose ourselves (a bridge's target).
pub(super) fn media_params(
    n: &Negotiated,
    inband: InbandMode,
    signalled_from: Option<IpAddr>,
) -> MediaParams {
    let reachable = |addr: Option<SocketAddr>| {
        addr.filter(|a| signalled_from.is_none_or(|from| may_send_to(a.ip(), from)))
    };
    let g711 = matches!(n.codec, Codec::Pcmu | Codec::Pcma);
    MediaParams {
        inband: g711
            && match inband {
                InbandMode::On => true,
                InbandMode::Off => false,
                InbandMode::Auto => n.telephone_event.is_none(),
            },
        codec: n.codec,
        payload_type: n.payload_type,
        telephone_event: n.telephone_event,
        remote: reachable(n.remote),
        send: n.direction.sends(),
        peer_sends: n.peer_sends,
        srtp: n.srtp.clone(),
        rtcp_mux: n.rtcp_mux,
        remote_rtcp: reachable(n.remote_rtcp),
    }
}

pub(super) fn encryption_name(params: &MediaParams) -> &'static str {
    match params.srtp {
        Some(_) => "srtp",
        None => "none",
    }
}

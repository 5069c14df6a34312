//! From a negotiated session to a stream's parameters, and the rules on where media may go.

use crate::config::InbandMode;
use crate::media::codec::Codec;
use crate::media::stream::MediaParams;
use crate::session::negotiate::Negotiated;

pub(super) fn media_params(n: &Negotiated, inband: InbandMode) -> MediaParams {
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
        remote: n.remote,
        send: n.direction.sends(),
        peer_sends: n.peer_sends,
        srtp: n.srtp.clone(),
        rtcp_mux: n.rtcp_mux,
        remote_rtcp: n.remote_rtcp,
    }
}

pub(super) fn encryption_name(params: &MediaParams) -> &'static str {
    match params.srtp {
        Some(_) => "srtp",
        None => "none",
    }
}

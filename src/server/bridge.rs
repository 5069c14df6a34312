//! Bridged transfer (`mode = "bridge"`): we call the target ourselves with the caller's codec,
//! play ringback (or pass on the target's early media), and once it answers relay RTP between
//! the two calls packet for packet, keys included. Either side hanging up ends both; a target
//! that is busy, refuses, or does not answer in time sends the flow to `on_transfer_failed`.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::mpsc;

use super::call::{ActiveCall, Bridge};
use super::media_wiring::media_params;
use super::switchboard::{rejection, Switchboard};
use crate::config::InbandMode;
use crate::ivr::call::TransferMode;
use crate::ivr::call::{CallRequest, TransferRequest};
use crate::media::relay::{self};
use crate::media::stream::{MediaCommand, MediaEvent, RtpStream};
use crate::records;
use crate::session::negotiate::{self, Encryption};
use crate::sip::dial::DialRequest;
use crate::sip::locate::Place;
use crate::sip::message::split_host_port;
use crate::sip::refer::TransferOutcome;
use crate::sip::transport::{Destination, Transport};
use crate::sip::ua::{CallRef, DialProgress, UaCommand};

/// The length of `prompts/ringback.wav`: it is queued often enough to cover the ring time.
const RINGBACK_SECONDS: u64 = 6;

/// Where a `sip:` URI's host is, as something to locate.
fn place_of(target: &str) -> Option<Place> {
    let (scheme, rest) = target.split_once(':')?;
    if !scheme.eq_ignore_ascii_case("sip") {
        return None;
    }
    let mut parts = rest.split(';');
    let hostport = parts.next()?.rsplit('@').next()?;
    let (host, port) = split_host_port(hostport)?;
    let tcp = parts.any(|p| p.eq_ignore_ascii_case("transport=tcp"));
    Some(Place {
        host,
        port,
        transport: if tcp { Transport::Tcp } else { Transport::Udp },
        tls_name: None,
    })
}

impl Switchboard {
    pub(super) fn transfer(&mut self, call: CallRef, request: TransferRequest) {
        match request.mode {
            TransferMode::Refer => self.command(UaCommand::Transfer {
                call,
                target: request.target,
            }),
            TransferMode::Bridge => {
                if let Err(status) = self.bridge(call, request) {
                    if let Some(active) = self.calls.get(&call) {
                        tell_flow(active, TransferOutcome::Failed { status });
                    }
                }
            }
        }
    }

    /// Starts calling the target: ringback to the caller, then DNS, then the INVITE.
    fn bridge(&mut self, call: CallRef, request: TransferRequest) -> Result<(), u16> {
        let credentials = self.transfer_credentials.clone();
        let patience = request
            .ring_timeout
            .unwrap_or(Duration::from_secs(self.settings.sip.transfer_timeout_s));
        let Some(active) = self.calls.get(&call) else {
            return Ok(());
        };
        if active.bridge.is_some() {
            return Err(500);
        }
        let codec = active.codec;
        let place = place_of(&request.target).ok_or(416u16)?;
        let lease = self.pool.lease().ok_or_else(|| {
            tracing::warn!(call_id = %active.call_id, "no free RTP port for the bridge");
            503u16
        })?;
        // The PBX leg is inside the operator's network, and its SIP is not over TLS.
        let local = self.local_media(&lease, Encryption::Off, false);
        let offer = negotiate::offer(&[codec], &local).map_err(|_| 500u16)?;
        let Some(active) = self.calls.get_mut(&call) else {
            return Ok(());
        };
        if let Some(ringback) = self.prompts.get("ringback") {
            for n in 0..patience.as_secs().div_ceil(RINGBACK_SECONDS).max(1) {
                let _ = active.media.send(MediaCommand::Play {
                    prompt: ringback.clone(),
                    id: u64::MAX - n,
                    interruptible: false,
                });
            }
        }
        let (caller_end, agent_end) = relay::pair();
        let _ = active.media.send(MediaCommand::Relay(caller_end));
        tracing::info!(call_id = %active.call_id, target = %request.target, ring_s = patience.as_secs(), "bridging");
        let transport = place.transport;
        active.bridge = Some(Bridge {
            target: request.target.clone(),
            leg: None,
            codec,
            local,
            lease: Some(lease),
            relay: Some(agent_end),
            agent_media: None,
            answered_ms: None,
            caller_stays: request.caller_stays,
            pending: Some(DialRequest {
                target: request.target,
                destination: Destination {
                    transport,
                    addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                },
                caller: self.settings.transfer.present_as.clone(),
                offer,
                credentials,
                patience,
            }),
        });
        let locator = self.locator.clone();
        let located = self.located.clone();
        tokio::spawn(async move {
            let found = locator.locate(&place).await;
            let _ = located.send((call, found.map(|a| a.first().copied())));
        });
        Ok(())
    }

    /// The target's address is known (or not): the INVITE goes.
    pub(super) fn on_located(&mut self, call: CallRef, found: Result<Option<SocketAddr>, String>) {
        let Some(active) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(bridge) = active.bridge.as_mut() else {
            return;
        };
        let Some(mut request) = bridge.pending.take() else {
            return;
        };
        match found {
            Ok(Some(addr)) => {
                request.destination.addr = addr;
                self.command(UaCommand::Dial { call, request });
            }
            Ok(None) | Err(_) => {
                tracing::warn!(call_id = %active.call_id, target = %bridge.target, "transfer target not found: {found:?}");
                self.end_bridge(call, Some(TransferOutcome::Failed { status: 404 }));
            }
        }
    }

    pub(super) fn on_dialled(&mut self, call: CallRef, leg: CallRef, progress: DialProgress) {
        let known = self
            .calls
            .get(&call)
            .and_then(|a| a.bridge.as_ref())
            .is_some_and(|b| b.leg.is_none_or(|l| l == leg));
        // Kept until the leg's end (or failure), so its `Ended` is known for a leg's.
        if progress == DialProgress::Calling {
            self.legs.insert(leg, call);
        }
        if !known {
            // The caller left before the target answered: the call we placed goes too.
            if matches!(progress, DialProgress::Failed { .. }) {
                self.legs.remove(&leg);
            }
            return self.command(UaCommand::Hangup { call: leg });
        }
        match progress {
            DialProgress::Calling => {
                if let Some(bridge) = self.calls.get_mut(&call).and_then(|a| a.bridge.as_mut()) {
                    bridge.leg = Some(leg);
                }
            }
            DialProgress::Ringing { early: None } => {}
            DialProgress::Ringing { early: Some(sdp) } => {
                if !self.target_media(call, &sdp, false) {
                    tracing::info!(leg, "early media we cannot take: ringback instead");
                }
            }
            DialProgress::Answered { answer } => {
                if !self.target_media(call, &answer, true) {
                    self.command(UaCommand::Hangup { call: leg });
                    self.legs.remove(&leg);
                    return self.end_bridge(call, Some(TransferOutcome::Failed { status: 488 }));
                }
                if let Some(active) = self.calls.get_mut(&call) {
                    let _ = active.media.send(MediaCommand::StopPlayback);
                    if let Some(bridge) = active.bridge.as_mut() {
                        bridge.answered_ms = Some(records::now_ms());
                        tracing::info!(call_id = %active.call_id, target = %bridge.target, "bridged: the target answered");
                    }
                    tell_flow(active, TransferOutcome::Succeeded);
                }
            }
            DialProgress::Failed { status } => {
                self.legs.remove(&leg);
                if let Some(active) = self.calls.get(&call) {
                    tracing::info!(call_id = %active.call_id, status, "bridge failed: the target did not answer");
                }
                self.end_bridge(call, Some(TransferOutcome::Failed { status }));
            }
        }
    }

    /// The call we placed ended (the target hung up): the caller's call ends too.
    pub(super) fn on_leg_ended(&mut self, leg: CallRef) -> bool {
        let Some(call) = self.legs.remove(&leg) else {
            return false;
        };
        let Some(active) = self.calls.get_mut(&call) else {
            return true;
        };
        let Some(bridge) = active.bridge.as_mut() else {
            return true;
        };
        bridge.agent_media = None;
        if !bridge.caller_stays {
            tracing::info!(call_id = %active.call_id, "the transfer target hung up: ending the call");
            self.command(UaCommand::Hangup { call });
            return true;
        }
        let bridged_ms = bridge
            .answered_ms
            .map_or(0, |at| records::now_ms().saturating_sub(at));
        active.record.bridged_s = Some(bridged_ms as f64 / 1000.0);
        let seconds = bridged_ms / 1000;
        tracing::info!(call_id = %active.call_id, seconds, "the transfer target hung up: the caller goes back to the flow");
        self.end_bridge(call, Some(TransferOutcome::Ended { seconds }));
        true
    }

    /// The caller's call ended: the call placed for it ends too (BYE, or CANCEL if ringing).
    pub(super) fn caller_ended(&mut self, active: &ActiveCall) {
        if let Some(leg) = active.bridge.as_ref().and_then(|b| b.leg) {
            self.command(UaCommand::Hangup { call: leg });
        }
    }

    /// A re-INVITE from the target: the same media, described again (our offer, when it
    /// brought none; its answer comes in the ACK, to `leg_answer`).
    pub(super) fn leg_reoffer(&mut self, leg: CallRef, offer: Option<Vec<u8>>) {
        let inband = InbandMode::Off;
        let Some(bridge) = self.bridge_of_leg(leg) else {
            return;
        };
        bridge.local.version += 1;
        let codecs = [bridge.codec];
        let command = match offer
            .as_deref()
            .map(|o| negotiate::answer(o, &codecs, &bridge.local))
        {
            Some(Ok((n, sdp))) => {
                if let Some(media) = &bridge.agent_media {
                    let _ = media.send(MediaCommand::Update(media_params(&n, inband, None)));
                }
                UaCommand::Answer { call: leg, sdp }
            }
            Some(Err(r)) => rejection(leg, r),
            None => match negotiate::offer(&codecs, &bridge.local) {
                Ok(sdp) => UaCommand::Answer { call: leg, sdp },
                Err(r) => rejection(leg, r),
            },
        };
        self.command(command);
    }

    /// The target's answer, in its ACK, to the offer we made in a re-INVITE without one.
    pub(super) fn leg_answer(&mut self, leg: CallRef, answer: &[u8]) {
        let Some(bridge) = self.bridge_of_leg(leg) else {
            return;
        };
        match negotiate::read_answer(answer, &[bridge.codec], &bridge.local) {
            Ok(n) => {
                if let Some(media) = &bridge.agent_media {
                    let params = media_params(&n, InbandMode::Off, None);
                    let _ = media.send(MediaCommand::Update(params));
                }
            }
            Err(why) => {
                tracing::warn!(
                    leg,
                    "the transfer target's answer is unusable ({why:?}): BYE"
                );
                self.command(UaCommand::Hangup { call: leg });
            }
        }
    }

    fn bridge_of_leg(&mut self, leg: CallRef) -> Option<&mut Bridge> {
        let call = *self.legs.get(&leg)?;
        self.calls.get_mut(&call)?.bridge.as_mut()
    }

    /// Starts (or updates) our stream toward the target from its SDP; `answered` lets it send.
    fn target_media(&mut self, call: CallRef, sdp: &[u8], answered: bool) -> bool {
        let liveness = self.settings.liveness();
        let prompts = self.prompts.clone();
        let requests = self.requests.clone();
        let Some(active) = self.calls.get_mut(&call) else {
            return false;
        };
        let call_id = active.call_id.clone();
        let Some(bridge) = active.bridge.as_mut() else {
            return false;
        };
        let negotiated = match negotiate::read_answer(sdp, &[bridge.codec], &bridge.local) {
            Ok(n) => n,
            Err(why) => {
                tracing::warn!(%call_id, "the transfer target's SDP is unusable: {why:?}");
                return false;
            }
        };
        let params = media_params(&negotiated, InbandMode::Off, None);
        if bridge.agent_media.is_none() {
            let (Some(lease), Some(relay)) = (bridge.lease.take(), bridge.relay.take()) else {
                return false;
            };
            let (media, commands) = mpsc::unbounded_channel();
            let (events_tx, mut events) = mpsc::unbounded_channel();
            let stream = RtpStream::new(
                format!("{call_id}/transfer"),
                lease,
                params,
                prompts,
                liveness,
                commands,
                events_tx,
            );
            let _ = media.send(MediaCommand::Relay(relay));
            self.pacer.add(stream);
            tokio::spawn(async move {
                while let Some(event) = events.recv().await {
                    if event == MediaEvent::Inactive {
                        tracing::info!(%call_id, "no RTP from the transfer target, hanging up");
                        let _ = requests.send((call, CallRequest::Hangup));
                    }
                }
            });
            bridge.agent_media = Some(media);
        } else if let Some(media) = &bridge.agent_media {
            let _ = media.send(MediaCommand::Update(params));
        }
        if answered {
            if let Some(media) = &bridge.agent_media {
                let _ = media.send(MediaCommand::Confirmed);
            }
        }
        true
    }

    /// The bridge is over before it began: its stream and port go, the flow hears `outcome`.
    fn end_bridge(&mut self, call: CallRef, outcome: Option<TransferOutcome>) {
        let Some(active) = self.calls.get_mut(&call) else {
            return;
        };
        active.bridge = None;
        // The caller's packets go nowhere now, and prompts are its stream's again.
        let _ = active.media.send(MediaCommand::Unrelay);
        let _ = active.media.send(MediaCommand::StopPlayback);
        if let Some(outcome) = outcome {
            tell_flow(active, outcome);
        }
    }
}

fn tell_flow(active: &ActiveCall, outcome: TransferOutcome) {
    if let Some(flow) = &active.transfers {
        let _ = flow.send(outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_located_by_their_host_port_and_transport() {
        let place = place_of("sip:agents@192.0.2.7:5080").unwrap();
        assert_eq!((place.host.as_str(), place.port), ("192.0.2.7", Some(5080)));
        assert_eq!(place.transport, Transport::Udp);
        let place = place_of("sip:pbx.example;transport=TCP").unwrap();
        assert_eq!((place.host.as_str(), place.port), ("pbx.example", None));
        assert_eq!(place.transport, Transport::Tcp);
        assert!(place_of("tel:+15551234").is_none());
        assert!(place_of("sips:agents@pbx.example").is_none());
    }
}

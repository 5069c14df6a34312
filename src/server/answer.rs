//! Answering: an INVITE admitted or declined, its session negotiated, a port leased and the
//! stream started; re-INVITEs answered for the same media; the flow started at the ACK.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::call::{ActiveCall, Arrival};
use super::media_wiring::{encryption_name, media_params};
use super::switchboard::{rejection, Switchboard};
use crate::ivr::call::Call;
use crate::ivr::flow::{self, FlowEnv};
use crate::media::ports::PortLease;
use crate::media::srtp::MasterKey;
use crate::media::stream::{MediaCommand, MediaParams, RtpStream};
use crate::metrics::METRICS;
use crate::records::{self, CallRecord};
use crate::session::negotiate::{self, Encryption, LocalMedia};
use crate::sip::transport::Transport;
use crate::sip::ua::{CallRef, Decline, UaCommand, Warning};

impl Switchboard {
    pub(super) fn on_incoming(
        &mut self,
        call: CallRef,
        arrival: Arrival,
        offer: Option<Vec<u8>>,
        mut record: CallRecord,
        flow_env: Arc<FlowEnv>,
    ) {
        let Arrival {
            caller,
            source,
            transport,
        } = arrival;
        let call_id = record.call_id.clone();
        let Some(lease) = self.pool.lease() else {
            tracing::warn!(%call_id, "no free RTP port, refusing the call");
            let decline = Decline {
                status: 503,
                reason: "Service Unavailable",
                warning: Some(Warning {
                    code: 399,
                    text: "No media port available".into(),
                }),
            };
            return self.command(UaCommand::Decline { call, decline });
        };
        let keys_may_travel = transport == Transport::Tls || self.settings.rtp.sdes_over_plain_sip;
        let local = self.local_media(&lease, self.settings.rtp.encryption, keys_may_travel);
        let (params, sdp, awaiting_answer) = match offer {
            Some(offer) => match negotiate::answer(&offer, &self.codecs, &local) {
                Ok((n, sdp)) => {
                    if let Some(why) = &n.crypto_declined {
                        tracing::info!(%call_id, "plain RTP answered, a=crypto not used: {why}");
                    }
                    (
                        media_params(&n, self.settings.dtmf.inband, Some(source)),
                        sdp,
                        false,
                    )
                }
                Err(r) => {
                    tracing::info!(%call_id, "offer refused: {r:?}");
                    return self.command(rejection(call, r));
                }
            },
            None => {
                let sdp = match negotiate::offer(&self.codecs, &local) {
                    Ok(sdp) => sdp,
                    Err(r) => {
                        tracing::info!(%call_id, "no offer we may make: {r:?}");
                        return self.command(rejection(call, r));
                    }
                };
                let codec = self.codecs[0];
                let params = MediaParams {
                    codec,
                    payload_type: codec.default_payload_type(),
                    telephone_event: None,
                    remote: None,
                    send: true,
                    peer_sends: false,
                    inband: false,
                    srtp: None,
                    rtcp_mux: false,
                    remote_rtcp: None,
                };
                (params, sdp, true)
            }
        };
        tracing::info!(%call_id, codec = params.codec.sdp_name(), srtp = params.srtp.is_some(), rtp_port = local.port, remote = ?params.remote, "session negotiated");
        record.codec = params.codec.sdp_name();
        record.encryption = encryption_name(&params);
        let codec = params.codec;
        let (media, media_rx) = mpsc::unbounded_channel();
        let (media_events_tx, media_events) = mpsc::unbounded_channel();
        let stream = RtpStream::new(
            call_id.clone(),
            lease,
            params,
            self.prompts.clone(),
            self.settings.liveness(),
            media_rx,
            media_events_tx,
        );
        let rtp = stream.counts();
        self.pacer.add(stream);
        METRICS.calls_active.inc();
        self.calls.insert(
            call,
            ActiveCall {
                call_id,
                caller,
                signalled_from: source,
                media,
                media_events: Some(media_events),
                local,
                awaiting_answer,
                flow: None,
                flow_env,
                record,
                rtp,
                report: Arc::default(),
                transfers: None,
                codec,
                bridge: None,
                held_answer: None,
                first_reply: None,
            },
        );
        if let Some(active) = self.calls.get(&call) {
            active.report_status("initiated", None);
        }
        self.answer_or_consult(call, sdp);
    }

    /// Our side of a new stream on `lease`, as its SDP will describe it.
    pub(super) fn local_media(
        &self,
        lease: &PortLease,
        encryption: Encryption,
        keys_may_travel: bool,
    ) -> LocalMedia {
        LocalMedia {
            ip: self.media_ip,
            port: lease.port(),
            session_id: rand::random::<u32>() as u64,
            version: 1,
            telephone_event: self.settings.dtmf.telephone_event,
            encryption,
            keys_may_travel,
            key: MasterKey::random(),
        }
    }

    pub(super) fn on_reinvite(&mut self, call: CallRef, offer: Option<Vec<u8>>) {
        let Some(active) = self.calls.get_mut(&call) else {
            return;
        };
        active.local.version += 1;
        let command = match offer {
            Some(offer) => match negotiate::answer(&offer, &self.codecs, &active.local) {
                Ok((n, sdp)) => {
                    tracing::info!(call_id = %active.call_id, direction = n.direction.attribute(), "session updated");
                    let params =
                        media_params(&n, self.settings.dtmf.inband, Some(active.signalled_from));
                    active.record.codec = n.codec.sdp_name();
                    active.codec = n.codec;
                    active.record.encryption = encryption_name(&params);
                    let _ = active.media.send(MediaCommand::Update(params));
                    UaCommand::Answer { call, sdp }
                }
                Err(r) => rejection(call, r),
            },
            None => match negotiate::offer(&self.codecs, &active.local) {
                Ok(sdp) => {
                    active.awaiting_answer = true;
                    UaCommand::Answer { call, sdp }
                }
                Err(r) => rejection(call, r),
            },
        };
        self.command(command);
    }

    pub(super) fn on_confirmed(&mut self, call: CallRef, answer: Option<Vec<u8>>) {
        let Some(active) = self.calls.get_mut(&call) else {
            return;
        };
        if active.awaiting_answer {
            active.awaiting_answer = false;
            match answer
                .as_deref()
                .map(|a| negotiate::read_answer(a, &self.codecs, &active.local))
            {
                Some(Ok(n)) => {
                    tracing::info!(call_id = %active.call_id, codec = n.codec.sdp_name(), srtp = n.srtp.is_some(), "answer received in ACK");
                    let params =
                        media_params(&n, self.settings.dtmf.inband, Some(active.signalled_from));
                    active.record.codec = n.codec.sdp_name();
                    active.codec = n.codec;
                    active.record.encryption = encryption_name(&params);
                    let _ = active.media.send(MediaCommand::Update(params));
                }
                failed => {
                    tracing::warn!(call_id = %active.call_id, "ACK without a usable answer ({failed:?}), hanging up");
                    return self.command(UaCommand::Hangup { call });
                }
            }
        }
        let _ = active.media.send(MediaCommand::Confirmed);
        if active.record.answered_ms.is_none() {
            let answered = records::now_ms();
            active.record.answered_ms = Some(answered);
            let setup_ms = answered.saturating_sub(active.record.started_ms);
            METRICS.call_setup_seconds.observe(setup_ms as f64 / 1000.0);
            active.report_status("answered", None);
        }
        if let Some(events) = active.media_events.take() {
            let (transfers, transfers_rx) = mpsc::unbounded_channel();
            active.transfers = Some(transfers);
            let handle = Call::new(
                active.call_id.clone(),
                call,
                active.media.clone(),
                events,
                self.requests.clone(),
                transfers_rx,
                self.prompts.clone(),
            );
            let arrival = (active.caller.clone(), active.first_reply.take());
            let closing = self.closing.subscribe();
            active.flow = Some(tokio::spawn(flow::run(
                handle,
                active.flow_env.clone(),
                arrival,
                closing,
                active.report.clone(),
            )));
        }
    }
}

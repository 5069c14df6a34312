//! The switchboard's loop: events from the SIP stack, requests from the flows, located bridge
//! targets and the operator's controls, each turned into commands; a call's entry lives from
//! its INVITE to its end.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use anyhow::Result;
use tokio::sync::{mpsc, oneshot, watch};

use super::call::{calling_party, dialled_user, ActiveCall, Arrival};
use super::{Control, Reloaded, Reloader, NEVER};
use crate::config::Settings;
use crate::directory::Directory;
use crate::ivr::call::CallRequest;
use crate::ivr::flow::{FirstReply, Flows};
use crate::media::codec::Codec;
use crate::media::dtmf::DigitSource;
use crate::media::pacer::Pacer;
use crate::media::ports::PortPool;
use crate::media::prompt::PromptLibrary;
use crate::media::stream::MediaCommand;
use crate::metrics::{Outcome, Reason, METRICS};
use crate::records::{self, CallRecord, RecordFile};
use crate::session::negotiate::Rejection;
use crate::sip::locate::TrunkLocator;
use crate::sip::message::{self, uri_user};
use crate::sip::tls::Certificates;
use crate::sip::ua::{CallRef, Decline, UaCommand, UaEvent, Warning};

/// The locator a bridge's target is found with, shared with the tasks that ask it.
pub(super) type SharedLocator = Arc<crate::sip::locate::Locator>;

pub(super) struct Switchboard {
    pub(super) settings: Settings,
    pub(super) prompts: Arc<PromptLibrary>,
    pub(super) flows: Arc<Flows>,
    pub(super) pool: PortPool,
    pub(super) pacer: Pacer,
    pub(super) codecs: Vec<Codec>,
    pub(super) media_ip: IpAddr,
    pub(super) commands: mpsc::UnboundedSender<UaCommand>,
    pub(super) requests: mpsc::UnboundedSender<(CallRef, CallRequest)>,
    pub(super) calls: HashMap<CallRef, ActiveCall>,
    /// Turned true when the shutdown grace is over: every flow says goodbye and hangs up.
    pub(super) closing: watch::Sender<bool>,
    /// Set at the first stop signal, for `/health/ready`.
    pub(super) draining: Arc<AtomicBool>,
    pub(super) records: Option<RecordFile>,
    /// Shared with the operations endpoint's readiness check.
    pub(super) directory: Arc<RwLock<Arc<dyn Directory>>>,
    /// SIP over TLS's certificate, re-read on reload.
    pub(super) certificates: Option<Arc<Certificates>>,
    pub(super) trunk_locator: TrunkLocator,
    /// Bridged transfers: the call placed → the caller's call.
    pub(super) legs: HashMap<CallRef, CallRef>,
    pub(super) locator: SharedLocator,
    pub(super) located: mpsc::UnboundedSender<(CallRef, Located)>,
    /// The first replies of applications asked about calls still ringing.
    pub(super) consulted: mpsc::UnboundedSender<(CallRef, FirstReply)>,
    pub(super) transfer_credentials: Option<crate::sip::dial::Credentials>,
}

/// Answers for calls that tasks of their own found (a bridge target located, an application's
/// first reply).
pub(super) type Receiver<T> = mpsc::UnboundedReceiver<(CallRef, T)>;

/// A bridge target's address, once DNS has answered.
pub(super) type Located = Result<Option<SocketAddr>, String>;

pub(super) fn rejection(call: CallRef, r: Rejection) -> UaCommand {
    let decline = match r {
        Rejection::Malformed(why) => Decline {
            status: 400,
            reason: "Bad Request",
            warning: Some(Warning {
                code: 399,
                text: why,
            }),
        },
        Rejection::NotAcceptable { warn_code, text } => Decline {
            status: 488,
            reason: "Not Acceptable Here",
            warning: Some(Warning {
                code: warn_code,
                text,
            }),
        },
    };
    UaCommand::Decline { call, decline }
}

impl Switchboard {
    pub(super) async fn run(
        mut self,
        mut events: mpsc::UnboundedReceiver<UaEvent>,
        mut requests: mpsc::UnboundedReceiver<(CallRef, CallRequest)>,
        (mut located, mut consulted): (Receiver<Located>, Receiver<FirstReply>),
        mut controls: mpsc::UnboundedReceiver<Control>,
        reloader: Reloader,
    ) {
        let (reloaded_tx, mut reloaded) = mpsc::unbounded_channel();
        let grace = std::time::Duration::from_secs(self.settings.shutdown.grace_s);
        let mut draining = false;
        let grace_over = tokio::time::sleep(NEVER);
        tokio::pin!(grace_over);
        loop {
            if draining && self.calls.is_empty() {
                // Let the transport hand the last BYEs to the kernel, and the trunk answer our
                // Expires: 0.
                let linger = if self.settings.all_trunks().next().is_some() {
                    1000
                } else {
                    200
                };
                tokio::time::sleep(std::time::Duration::from_millis(linger)).await;
                tracing::info!("drained: every call has ended");
                return;
            }
            tokio::select! {
                Some(event) = events.recv() => self.on_event(event),
                Some((call, request)) = requests.recv() => match request {
                    CallRequest::Hangup => self.command(UaCommand::Hangup { call }),
                    CallRequest::Transfer(request) => self.transfer(call, request),
                },
                Some((call, found)) = located.recv() => self.on_located(call, found),
                Some((call, reply)) = consulted.recv() => self.on_consulted(call, reply),
                Some(control) = controls.recv() => match control {
                    Control::Reload(reply) => {
                        let reloader = reloader.clone();
                        let done = reloaded_tx.clone();
                        tokio::spawn(async move {
                            let result = tokio::task::spawn_blocking(move || reloader())
                                .await
                                .unwrap_or_else(|e| Err(anyhow::anyhow!("reload panicked: {e}")));
                            let _ = done.send((result, reply));
                        });
                    }
                    stop => {
                        self.command(UaCommand::Drain);
                        self.draining.store(true, Ordering::Relaxed);
                        if matches!(stop, Control::Drain) && !draining {
                            tracing::info!(calls = self.calls.len(), grace_s = grace.as_secs(), "stopping: no new calls, calls in progress go on");
                            grace_over.as_mut().reset(tokio::time::Instant::now() + grace);
                        } else {
                            tracing::info!(calls = self.calls.len(), "stopping now: every call gets BYE");
                            for &call in self.calls.keys() {
                                self.command(UaCommand::Hangup { call });
                            }
                        }
                        draining = true;
                    }
                },
                Some((result, reply)) = reloaded.recv() => self.on_reloaded(result, reply),
                () = &mut grace_over, if draining => {
                    tracing::info!(calls = self.calls.len(), "shutdown grace over: goodbye to the calls left");
                    let _ = self.closing.send(true);
                    // A call not yet confirmed has no conversation to say goodbye.
                    for (&call, active) in &self.calls {
                        if active.flow.is_none() {
                            self.command(UaCommand::Hangup { call });
                        }
                    }
                    grace_over.as_mut().reset(tokio::time::Instant::now() + NEVER);
                }
                else => return,
            }
        }
    }

    pub(super) fn on_reloaded(
        &mut self,
        result: Result<Reloaded>,
        reply: Option<oneshot::Sender<Result<(), String>>>,
    ) {
        if let Some(records) = &mut self.records {
            records.reopen();
        }
        let result = match (result, &self.certificates) {
            (Ok(reloaded), Some(certs)) => certs.reload().map(|()| reloaded),
            (result, _) => result,
        };
        let outcome = if result.is_ok() { "ok" } else { "refused" };
        METRICS.reloads.get_or_create(&Outcome { outcome }).inc();
        let answer = match result {
            Ok(reloaded) => {
                self.prompts = reloaded.prompts;
                self.flows = reloaded.flows;
                if let Ok(mut directory) = self.directory.write() {
                    *directory = reloaded.directory;
                }
                tracing::info!(
                    prompts = self.prompts.len(),
                    "reloaded: new calls use the new flow, prompts and users"
                );
                Ok(())
            }
            Err(e) => {
                tracing::error!("reload refused, the running configuration stays: {e:#}");
                Err(format!("{e:#}"))
            }
        };
        if let Some(reply) = reply {
            let _ = reply.send(answer);
        }
    }

    pub(super) fn command(&self, command: UaCommand) {
        let _ = self.commands.send(command);
    }

    pub(super) fn on_event(&mut self, event: UaEvent) {
        match event {
            UaEvent::Incoming {
                call,
                call_id,
                from,
                asserted,
                dialled,
                to,
                transport,
                offer,
                source,
                vouched,
            } => {
                let mut caller = calling_party(&from, asserted.as_deref(), source.ip(), vouched);
                caller.dialled = dialled_user(&dialled);
                let record = CallRecord {
                    call_id: call_id.clone(),
                    caller: from.clone(),
                    asserted_identity: asserted,
                    dialled: dialled_user(&dialled),
                    transport: transport.via_name(),
                    encryption: "none",
                    started_ms: records::now_ms(),
                    ..CallRecord::default()
                };
                let to_user = message::uri_of(&to).unwrap_or_default();
                let to_user = uri_user(&to_user);
                let Some(flow) = self.flows.pick(&record.dialled, to_user).cloned() else {
                    tracing::info!(call_id = %record.call_id, dialled = %record.dialled, "no route for the number dialled: 404");
                    let decline = Decline {
                        status: 404,
                        reason: "Not Found",
                        warning: None,
                    };
                    return self.command(UaCommand::Decline { call, decline });
                };
                tracing::info!(call_id = %record.call_id, dialled = %record.dialled, flow = %flow.name, "routed");
                let arrival = Arrival {
                    caller,
                    source: source.ip(),
                    transport,
                };
                self.on_incoming(call, arrival, offer, record, flow)
            }
            UaEvent::Reinvite { call, offer } if self.legs.contains_key(&call) => {
                self.leg_reoffer(call, offer)
            }
            UaEvent::Reinvite { call, offer } => self.on_reinvite(call, offer),
            UaEvent::LocateTrunk { trunk } => self.trunk_locator.locate(trunk, &self.commands),
            UaEvent::Confirmed { call, answer } if self.legs.contains_key(&call) => {
                // The target's answer to our offer in a re-INVITE it sent without one.
                if let Some(answer) = answer {
                    self.leg_answer(call, &answer);
                }
            }
            UaEvent::Confirmed { call, answer } => self.on_confirmed(call, answer),
            UaEvent::Transferred { call, outcome } => {
                let flow = self.calls.get(&call).and_then(|a| a.transfers.as_ref());
                if let Some(flow) = flow {
                    let _ = flow.send(outcome);
                }
            }
            UaEvent::Dialled {
                call,
                leg,
                progress,
            } => self.on_dialled(call, leg, progress),
            UaEvent::InfoDigit { call, digit } => {
                if let Some(active) = self.calls.get(&call) {
                    let source = DigitSource::Info;
                    let _ = active.media.send(MediaCommand::Digit { digit, source });
                }
            }
            UaEvent::Ended { call, .. } if self.on_leg_ended(call) => {}
            UaEvent::Ended { call, reason } => {
                let label = Reason {
                    reason: reason.as_str(),
                };
                METRICS.calls_ended.get_or_create(&label).inc();
                if let Some(active) = self.calls.remove(&call) {
                    self.caller_ended(&active);
                    METRICS.calls_active.dec();
                    let record = active.finished(reason);
                    active.report_status("completed", Some(&record));
                    if let Some(file) = &mut self.records {
                        file.write(&record);
                    }
                    // Said once the record is written: whoever reads the log can read it.
                    tracing::info!(call_id = %active.call_id, reason = reason.as_str(), "media released");
                }
            }
        }
    }
}

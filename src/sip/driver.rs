//! The only place the SIP core meets the world: it owns the transport, the timer and the
//! clock, feeds the sans-I/O `UserAgent` what arrives and sends what it returns.

use std::time::Instant;

use tokio::sync::mpsc;
use tokio::time::sleep_until;

use super::message::Message;
use super::transport::{Inbound, TransportHandle};
use super::ua::{UaCommand, UaEvent, UserAgent};
use crate::metrics::{Method, Status, METRICS};

pub async fn run(
    mut ua: UserAgent,
    transport: TransportHandle,
    mut inbound: mpsc::Receiver<Inbound>,
    mut commands: mpsc::UnboundedReceiver<UaCommand>,
    events: mpsc::UnboundedSender<UaEvent>,
) {
    loop {
        while let Some(transmit) = ua.poll_transmit() {
            count_response(&transmit.bytes);
            transport.send(transmit.destination, transmit.bytes);
        }
        while let Some(event) = ua.poll_event() {
            let _ = events.send(event);
        }
        let next = ua.poll_timeout();
        tokio::select! {
            Some(message) = inbound.recv() => {
                if let Ok(Message::Request(request)) = &message.message {
                    let method = Method { method: request.method.to_string() };
                    METRICS.sip_requests.get_or_create(&method).inc();
                }
                ua.handle_inbound(Instant::now(), message);
            }
            Some(command) = commands.recv() => ua.handle_command(Instant::now(), command),
            () = sleep_until(next.unwrap_or_else(Instant::now).into()), if next.is_some() => {
                ua.handle_timeout(Instant::now());
            }
            else => return,
        }
    }
}

/// Counts a response we send by its status code (requests we send are BYEs, not counted here).
fn count_response(bytes: &[u8]) {
    let status = bytes
        .strip_prefix(b"SIP/2.0 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| std::str::from_utf8(code).ok()?.parse().ok());
    if let Some(status) = status {
        METRICS
            .sip_responses
            .get_or_create(&Status { status })
            .inc();
    }
}

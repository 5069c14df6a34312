//! The only place the SIP core meets the world: it owns the transport, the timer and the
//! clock, feeds the sans-I/O `UserAgent` what arrives and sends what it returns.

use std::time::Instant;

use tokio::sync::mpsc;
use tokio::time::sleep_until;

use super::transport::{Inbound, TransportHandle};
use super::ua::{UaCommand, UaEvent, UserAgent};

pub async fn run(
    mut ua: UserAgent,
    transport: TransportHandle,
    mut inbound: mpsc::Receiver<Inbound>,
    mut commands: mpsc::UnboundedReceiver<UaCommand>,
    events: mpsc::UnboundedSender<UaEvent>,
) {
    loop {
        while let Some(transmit) = ua.poll_transmit() {
            transport.send(transmit.destination, transmit.bytes);
        }
        while let Some(event) = ua.poll_event() {
            let _ = events.send(event);
        }
        let next = ua.poll_timeout();
        tokio::select! {
            Some(message) = inbound.recv() => ua.handle_inbound(Instant::now(), message),
            Some(command) = commands.recv() => ua.handle_command(Instant::now(), command),
            () = sleep_until(next.unwrap_or_else(Instant::now).into()), if next.is_some() => {
                ua.handle_timeout(Instant::now());
            }
            else => return,
        }
    }
}

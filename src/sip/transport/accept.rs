//! Accepting TCP and TLS connections: within the caps (4096 in all, `per_source` from one
//! address), TLS handshakes counted against them while they run, and a pause after a failed
//! accept (out of file descriptors: EMFILE) instead of a loop that spins on it.

use std::net::IpAddr;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::*;

/// How long the acceptors wait after a failed accept: the error (EMFILE, ENFILE, ENOBUFS) does
/// not clear by asking again at once, and asking in a loop takes a core from every call.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// TLS handshakes under way, by source: each holds a socket until it ends.
pub(super) type Handshakes = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// One handshake's place in `Handshakes`, given back when it ends however it ends.
struct Handshaking {
    all: Handshakes,
    ip: IpAddr,
}

impl Handshaking {
    fn start(all: &Handshakes, ip: IpAddr) -> Handshaking {
        if let Ok(mut h) = all.lock() {
            *h.entry(ip).or_default() += 1;
        }
        Handshaking {
            all: all.clone(),
            ip,
        }
    }
}

impl Drop for Handshaking {
    fn drop(&mut self) {
        if let Ok(mut h) = self.all.lock() {
            if let Some(n) = h.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    h.remove(&self.ip);
                }
            }
        }
    }
}

/// Logs a failed accept and waits before the next.
async fn back_off(kind: &str, e: std::io::Error) {
    tracing::warn!("SIP {kind} accept failed: {e}; pausing {ACCEPT_BACKOFF:?}");
    tokio::time::sleep(ACCEPT_BACKOFF).await;
}

impl TransportHandle {
    pub(super) async fn tcp_acceptor(self, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let peer = canonical(peer);
                    if self.is_full(peer.ip()) {
                        continue;
                    }
                    without_nagle(&stream);
                    self.adopt(stream, peer, Transport::Tcp);
                }
                Err(e) => back_off("TCP", e).await,
            }
        }
    }

    /// Accepts TLS connections; a handshake that does not finish in time is dropped, so
    /// half-open sockets cannot pile up.
    pub(super) async fn tls_acceptor(self, listener: TcpListener, acceptor: TlsAcceptor) {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok((stream, peer)) => (stream, canonical(peer)),
                Err(e) => {
                    back_off("TLS", e).await;
                    continue;
                }
            };
            if self.is_full(peer.ip()) {
                continue;
            }
            without_nagle(&stream);
            let handle = self.clone();
            let acceptor = acceptor.clone();
            let handshaking = Handshaking::start(&self.handshakes, peer.ip());
            tokio::spawn(async move {
                let _handshaking = handshaking;
                match tokio::time::timeout(TLS_HANDSHAKE, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        handle.adopt(tls, peer, Transport::Tls);
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, "SIP TLS handshake failed: {e}"),
                    Err(_) => tracing::debug!(%peer, "SIP TLS handshake timed out"),
                }
            });
        }
    }

    /// Whether a new connection from `ip` must be refused: too many in all, or from it,
    /// counting TLS handshakes still under way.
    pub(super) fn is_full(&self, ip: IpAddr) -> bool {
        let (Ok(connections), Ok(handshakes)) = (self.connections.lock(), self.handshakes.lock())
        else {
            return true;
        };
        let total = connections.len() + handshakes.values().sum::<usize>();
        if total >= MAX_TCP_CONNECTIONS {
            tracing::warn!(%ip, "too many SIP connections, refusing");
            return true;
        }
        let from_ip = connections.keys().filter(|a| a.ip() == ip).count()
            + handshakes.get(&ip).copied().unwrap_or(0);
        if from_ip >= self.limits.per_source {
            tracing::debug!(%ip, "SIP connections per source at their limit, refusing");
            return true;
        }
        false
    }
}

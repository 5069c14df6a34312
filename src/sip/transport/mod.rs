//! SIP over UDP and TCP on one listen address. Reader tasks parse what arrives and hand it to
//! the user-agent core through one channel; sending never blocks the core (UDP `try_send_to`,
//! TCP through a per-connection writer task).

mod accept;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::{Buf, Bytes, BytesMut};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, Notify};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::framing::{next_frame, Frame};
use super::message::{self, Message, Unusable};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    pub fn reliable(self) -> bool {
        self != Transport::Udp
    }

    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination {
    pub transport: Transport,
    pub addr: SocketAddr,
}

#[derive(Debug)]
pub struct Inbound {
    pub message: Result<Message, Unusable>,
    pub source: SocketAddr,
    pub transport: Transport,
}

/// Connections held at once; past it new ones are refused (one fd and two tasks each).
const MAX_TCP_CONNECTIONS: usize = 4096;
/// How long a TLS handshake may take before the socket is dropped.
const TLS_HANDSHAKE: std::time::Duration = std::time::Duration::from_secs(10);
/// Parsed messages waiting for the user agent: a burst of this many is absorbed, then the
/// readers wait (UDP datagrams beyond it wait in the kernel's buffer).
const INBOUND_QUEUE: usize = 4096;
/// Bytes waiting to be written on one connection past which its next request is not read:
/// a peer that pipelines requests faster than it reads the answers is slowed down, never
/// answered partly.
const READ_PAUSE_BACKLOG: usize = 64 * 1024;
/// Bytes waiting on one connection past which it is closed: the peer has stopped reading.
const MAX_BACKLOG: usize = 1024 * 1024;
/// A connection must deliver its first whole message this soon (a scanner's idle sockets).
const FIRST_MESSAGE_WITHIN: Duration = Duration::from_secs(10);
/// A message, once begun, must be complete this soon (slowloris).
const PARTIAL_MESSAGE_WITHIN: Duration = Duration::from_secs(5);

/// What a TCP or TLS connection may hold on to.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Silence allowed on a connection that has delivered messages (a trunk's, between calls).
    pub idle: Duration,
    /// Connections one IP address may hold at once.
    pub per_source: usize,
}

/// One TCP or TLS connection's write side, shared by whoever sends on it.
#[derive(Clone)]
struct Link {
    writer: mpsc::UnboundedSender<Bytes>,
    /// Bytes queued and not yet written.
    backlog: Arc<AtomicUsize>,
    /// Signalled each time the writer drains some of the backlog.
    drained: Arc<Notify>,
}

impl Link {
    /// Queues `bytes`; false when the connection is gone or its peer stopped reading.
    fn send(&self, bytes: Bytes) -> bool {
        let len = bytes.len();
        if self.backlog.load(Ordering::Relaxed) + len > MAX_BACKLOG {
            return false;
        }
        self.backlog.fetch_add(len, Ordering::Relaxed);
        self.writer.send(bytes).is_ok()
    }

    /// Waits until the backlog is small enough to read another request.
    async fn room_to_read(&self) {
        while self.backlog.load(Ordering::Relaxed) > READ_PAUSE_BACKLOG {
            let drained = self.drained.notified();
            if self.backlog.load(Ordering::Relaxed) <= READ_PAUSE_BACKLOG {
                return;
            }
            drained.await;
        }
    }
}

type Connections = Arc<Mutex<HashMap<SocketAddr, Link>>>;

#[derive(Clone)]
pub struct TransportHandle {
    udp: Arc<UdpSocket>,
    connections: Connections,
    handshakes: accept::Handshakes,
    inbound: mpsc::Sender<Inbound>,
    local: SocketAddr,
    limits: ConnectionLimits,
    /// Opens TLS connections to the peers named in `tls_names` (trunks) and to no one else.
    tls_client: Option<TlsConnector>,
    tls_names: Arc<Mutex<HashMap<SocketAddr, ServerName<'static>>>>,
}

impl TransportHandle {
    /// Binds UDP and TCP on `listen` (and TLS on `tls`, when given) and starts the readers.
    pub async fn start(
        listen: SocketAddr,
        tls: Option<(SocketAddr, TlsAcceptor)>,
        tls_client: Option<TlsConnector>,
        limits: ConnectionLimits,
    ) -> Result<(TransportHandle, mpsc::Receiver<Inbound>)> {
        let udp = Arc::new(
            UdpSocket::bind(listen)
                .await
                .with_context(|| format!("binding SIP UDP {listen}"))?,
        );
        let local = udp.local_addr()?;
        let tcp = TcpListener::bind(SocketAddr::new(listen.ip(), local.port()))
            .await
            .with_context(|| format!("binding SIP TCP {listen}"))?;
        let (inbound, rx) = mpsc::channel(INBOUND_QUEUE);
        let handle = TransportHandle {
            udp,
            connections: Arc::default(),
            handshakes: Arc::default(),
            inbound,
            local,
            limits,
            tls_client,
            tls_names: Arc::default(),
        };
        tokio::spawn(handle.clone().udp_reader());
        tokio::spawn(handle.clone().tcp_acceptor(tcp));
        if let Some((tls_listen, acceptor)) = tls {
            let listener = TcpListener::bind(tls_listen)
                .await
                .with_context(|| format!("binding SIP TLS {tls_listen}"))?;
            tokio::spawn(handle.clone().tls_acceptor(listener, acceptor));
        }
        Ok((handle, rx))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn send(&self, dest: Destination, bytes: Bytes) {
        match dest.transport {
            Transport::Udp => {
                let Some(to) = self.reachable(dest.addr) else {
                    tracing::debug!(to = %dest.addr, "no route from our SIP socket's address family");
                    return;
                };
                if let Err(e) = self.udp.try_send_to(&bytes, to) {
                    tracing::debug!(to = %dest.addr, "SIP UDP send failed: {e}");
                }
            }
            Transport::Tcp => self.send_tcp(dest.addr, bytes),
            Transport::Tls => self.send_tls(dest.addr, bytes),
        }
    }

    /// `addr` is one of a trunk's servers, whose certificate must name `name`: TLS to it may
    /// open a connection of ours.
    pub fn name_tls_peer(&self, addr: SocketAddr, name: &str) {
        let Ok(name) = ServerName::try_from(name.to_string()) else {
            tracing::warn!(%addr, name, "not a usable TLS server name");
            return;
        };
        if let Ok(mut names) = self.tls_names.lock() {
            names.insert(addr, name);
        }
    }

    /// Over the peer's open connection; otherwise a new one, only to a named trunk server (a
    /// caller behind NAT could not take a new one anyway).
    fn send_tls(&self, addr: SocketAddr, bytes: Bytes) {
        if let Some(link) = self.connection(addr) {
            if !link.send(bytes) {
                tracing::debug!(to = %addr, "SIP TLS connection busy or closed, message dropped");
            }
            return;
        }
        let name = self
            .tls_names
            .lock()
            .ok()
            .and_then(|n| n.get(&addr).cloned());
        let (Some(connector), Some(name)) = (self.tls_client.clone(), name) else {
            tracing::debug!(to = %addr, "no open SIP TLS connection, message dropped");
            return;
        };
        let handle = self.clone();
        tokio::spawn(async move {
            let connect = async {
                let stream = TcpStream::connect(addr).await?;
                without_nagle(&stream);
                connector.connect(name, stream).await
            };
            match tokio::time::timeout(TLS_HANDSHAKE, connect).await {
                Ok(Ok(tls)) => {
                    let link = handle.adopt(tls, addr, Transport::Tls);
                    link.send(bytes);
                }
                Ok(Err(e)) => tracing::warn!(to = %addr, "SIP TLS connection failed: {e}"),
                Err(_) => tracing::warn!(to = %addr, "SIP TLS handshake timed out"),
            }
        });
    }

    /// `addr` as our UDP socket can send to it: an IPv4 address through a dual-stack IPv6
    /// socket goes as its mapped form; IPv6 from an IPv4 socket cannot go at all.
    fn reachable(&self, addr: SocketAddr) -> Option<SocketAddr> {
        match (self.local, addr) {
            (SocketAddr::V6(_), SocketAddr::V4(v4)) => Some(SocketAddr::new(
                IpAddr::V6(v4.ip().to_ipv6_mapped()),
                v4.port(),
            )),
            (SocketAddr::V4(_), SocketAddr::V6(v6)) => {
                let v4 = v6.ip().to_ipv4_mapped()?;
                Some(SocketAddr::new(IpAddr::V4(v4), v6.port()))
            }
            _ => Some(addr),
        }
    }

    fn connection(&self, addr: SocketAddr) -> Option<Link> {
        self.connections
            .lock()
            .ok()
            .and_then(|c| c.get(&addr).cloned())
    }

    fn send_tcp(&self, addr: SocketAddr, bytes: Bytes) {
        if let Some(link) = self.connection(addr) {
            if !link.send(bytes) {
                tracing::debug!(to = %addr, "SIP TCP connection busy or closed, message dropped");
            }
            return;
        }
        let handle = self.clone();
        tokio::spawn(async move {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    without_nagle(&stream);
                    let link = handle.adopt(stream, addr, Transport::Tcp);
                    link.send(bytes);
                }
                Err(e) => tracing::debug!(to = %addr, "SIP TCP connect failed: {e}"),
            }
        });
    }

    async fn udp_reader(self) {
        // A whole UDP datagram, so an oversized one is seen (and refused) rather than cut.
        let mut buf = vec![0u8; 65536];
        loop {
            let (len, source) = match self.udp.recv_from(&mut buf).await {
                Ok((len, source)) => (len, canonical(source)),
                Err(e) => {
                    tracing::debug!("SIP UDP receive error: {e}");
                    continue;
                }
            };
            let data = &buf[..len];
            if data.iter().all(|b| b.is_ascii_whitespace()) {
                continue; // CRLF keep-alive
            }
            let message = message::parse(data, source);
            if self
                .inbound
                .send(Inbound {
                    message,
                    source,
                    transport: Transport::Udp,
                })
                .await
                .is_err()
            {
                return;
            }
        }
    }

    /// Registers a connection and starts its reader and writer.
    fn adopt<S>(&self, stream: S, peer: SocketAddr, transport: Transport) -> Link
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut read, mut write) = tokio::io::split(stream);
        let (writer, mut outgoing) = mpsc::unbounded_channel::<Bytes>();
        let link = Link {
            writer,
            backlog: Arc::default(),
            drained: Arc::default(),
        };
        if let Ok(mut c) = self.connections.lock() {
            c.insert(peer, link.clone());
        }
        let (backlog, drained) = (link.backlog.clone(), link.drained.clone());
        tokio::spawn(async move {
            while let Some(bytes) = outgoing.recv().await {
                let written = write.write_all(&bytes).await;
                backlog.fetch_sub(bytes.len(), Ordering::Relaxed);
                drained.notify_waiters();
                if written.is_err() {
                    break;
                }
            }
        });
        let handle = self.clone();
        let ours = link.clone();
        let idle = self.limits.idle;
        tokio::spawn(async move {
            let mut buf = BytesMut::with_capacity(8192);
            let mut spoke = false;
            let mut partial_since = None;
            'read: loop {
                let now = tokio::time::Instant::now();
                let deadline = match (partial_since, spoke) {
                    (Some(since), _) => since + PARTIAL_MESSAGE_WITHIN,
                    (None, false) => now + FIRST_MESSAGE_WITHIN,
                    (None, true) => now + idle,
                };
                match tokio::time::timeout_at(deadline, read.read_buf(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Ok(Ok(_)) => {}
                    Err(_) => {
                        tracing::debug!(%peer, partial = partial_since.is_some(), spoke, "closing a silent or stalled SIP connection");
                        break;
                    }
                }
                loop {
                    match next_frame(&buf) {
                        Frame::Incomplete => break,
                        // A frame that consumes nothing would spin this task forever.
                        Frame::Message { len: 0 } | Frame::KeepAlive { skip: 0 } => break 'read,
                        Frame::KeepAlive { skip } => {
                            // A double-CRLF ping gets its CRLF pong (RFC 5626 §4.4.1).
                            if buf[..skip].windows(4).any(|w| w == b"\r\n\r\n") {
                                ours.send(Bytes::from_static(b"\r\n"));
                            }
                            buf.advance(skip);
                        }
                        Frame::TooLarge { head } => {
                            tracing::debug!(%peer, "closing SIP TCP connection: message over the size limit");
                            if let Some(reply) = message::too_large_reply(&buf[..head], peer) {
                                ours.send(reply);
                            }
                            break 'read;
                        }
                        Frame::Message { len } => {
                            ours.room_to_read().await;
                            spoke = true;
                            partial_since = None;
                            let frame = buf.split_to(len);
                            let inbound = Inbound {
                                message: message::parse(&frame, peer),
                                source: peer,
                                transport,
                            };
                            if handle.inbound.send(inbound).await.is_err() {
                                break 'read;
                            }
                        }
                        Frame::Broken(why) => {
                            tracing::debug!(%peer, "closing SIP TCP connection: {why}");
                            break 'read;
                        }
                    }
                }
                if buf.is_empty() {
                    partial_since = None;
                } else {
                    partial_since.get_or_insert_with(tokio::time::Instant::now);
                }
            }
            if let Ok(mut c) = handle.connections.lock() {
                if c.get(&peer)
                    .is_some_and(|l| l.writer.same_channel(&ours.writer))
                {
                    c.remove(&peer);
                }
            }
        });
        link
    }
}

/// Each SIP message is written whole: Nagle would hold a 200 behind the 100 Trying's
/// unacknowledged segment for the peer's delayed-ACK time (tens of milliseconds).
/// An IPv4 peer as a dual-stack socket reports it (`::ffff:a.b.c.d`) is the IPv4 address
/// everywhere above the transport: the allow-list, budgets, dialogs and logs see one form.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        v4 => v4,
    }
}

fn without_nagle(stream: &TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!("TCP_NODELAY not set: {e}");
    }
}

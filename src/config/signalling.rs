//! `[sip]`, `[admission]` and `[tls]`: where the IVR listens, what it answers with, and how much
//! of it a stranger may use.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::SipUserSettings;
use crate::media::codec::Codec;
use crate::sip::allow::{is_public, AllowList};
use crate::sip::transaction::Timers;
use crate::sip::transport::ConnectionLimits;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipSettings {
    /// Address for both UDP and TCP.
    pub listen: SocketAddr,
    /// Address written into Contact and SDP `c=`; empty means "work it out".
    pub public_addr: PublicAddr,
    pub t1_ms: u64,
    pub t2_ms: u64,
    pub t4_ms: u64,
    /// Codec preference, first match in the caller's offer wins.
    pub codecs: Vec<Codec>,
    pub user_agent: String,
    /// Ring (180) this long before answering; 0 answers at once.
    pub answer_delay_ms: u64,
    /// SIP over TLS on this address (e.g. `0.0.0.0:5061`); off when unset.
    pub tls_listen: Option<SocketAddr>,
    /// Seconds of silence before a TCP or TLS connection that has spoken is closed.
    pub tcp_idle_s: u64,
    /// Threads for signalling, the flows and lookups; 0 = a quarter of the cores, at least
    /// one. Media has a thread per core of its own, and every thread that wakes costs CPU
    /// (about 20 µs a wake-up on a virtual machine), so more pay only for heavy signalling.
    pub threads: usize,
    /// TCP and TLS connections one IP address may hold at once.
    pub tcp_connections_per_source: usize,
    /// Addresses or CIDRs that may send INVITEs (the trunk's ranges); empty: everyone.
    pub allow: Vec<String>,
    /// INVITEs from elsewhere get no answer instead of 403.
    pub allow_silent_drop: bool,
    /// Serve a public address with no `allow` list and no `users`: anyone on the internet may
    /// call and key PINs. Off, the IVR refuses to start that way.
    pub open_to_internet: bool,
    /// The digest realm softphones answer challenges for.
    pub realm: String,
    /// Softphones that may call and register with credentials.
    pub users: Vec<SipUserSettings>,
    /// The DNS server that locates trunks (SRV, A/AAAA); unset: the system's resolv.conf.
    pub dns_server: Option<SocketAddr>,
    /// Session timers (RFC 4028): the longest interval granted; 0 turns them off.
    pub session_expires_s: u32,
    /// The shortest interval accepted (at least 90, RFC 4028's floor).
    pub min_se_s: u32,
    /// How long a transfer may take, from our REFER to the caller's final NOTIFY.
    pub transfer_timeout_s: u64,
    /// Digest algorithms challenged with, in order (`MD5`, `SHA-256`).
    pub digest_algorithms: Vec<String>,
    /// Wrong passwords from one source before its credentials are refused unread...
    pub auth_max_failures: u32,
    /// ...for this long after its last one.
    pub auth_lock_s: u64,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl SipSettings {
    /// The async runtime's worker threads: `threads`, or a quarter of `cores`, at least one.
    pub fn runtime_threads_for(&self, cores: usize) -> usize {
        match self.threads {
            0 => (cores / 4).max(1),
            n => n,
        }
    }

    pub fn runtime_threads(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.runtime_threads_for(cores)
    }

    /// Refuses to serve `ip`, when it is public, to everyone unless the operator said so.
    pub fn check_exposure(&self, ip: std::net::IpAddr) -> Result<()> {
        if self.allow.is_empty() && self.users.is_empty() && !self.open_to_internet && is_public(ip)
        {
            anyhow::bail!(
                "{ip} is reachable from the internet and sip.allow is empty with no [[sip.users]]: anyone could call and guess PINs. List your trunk's address ranges in sip.allow, add softphone users, or set sip.open_to_internet = true (IVR_SIP__OPEN_TO_INTERNET) if that is what you mean"
            );
        }
        Ok(())
    }

    pub fn allow_list(&self) -> Result<AllowList> {
        AllowList::parse(&self.allow, self.allow_silent_drop).map_err(|e| anyhow::anyhow!(e))
    }

    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            idle: Duration::from_secs(self.tcp_idle_s),
            per_source: self.tcp_connections_per_source,
        }
    }

    pub fn timers(&self) -> Timers {
        Timers {
            t1: Duration::from_millis(self.t1_ms),
            t2: Duration::from_millis(self.t2_ms),
            t4: Duration::from_millis(self.t4_ms),
        }
    }
}

impl Default for SipSettings {
    fn default() -> Self {
        let timers = Timers::default();
        SipSettings {
            listen: "0.0.0.0:5060".parse().expect("literal address"),
            public_addr: PublicAddr::default(),
            t1_ms: millis(timers.t1),
            t2_ms: millis(timers.t2),
            t4_ms: millis(timers.t4),
            codecs: Codec::default_preference(),
            // No version: a scanner learns nothing to look vulnerabilities up by.
            user_agent: "ivr".into(),
            answer_delay_ms: 0,
            tls_listen: None,
            tcp_idle_s: 3600,
            threads: 0,
            tcp_connections_per_source: 64,
            allow: Vec::new(),
            allow_silent_drop: false,
            open_to_internet: false,
            realm: "ivr".into(),
            users: Vec::new(),
            dns_server: None,
            session_expires_s: 1800,
            transfer_timeout_s: 30,
            min_se_s: 90,
            // What Asterisk, FreeSWITCH and Kamailio challenge with by default: some phones
            // (baresip 1.0) give up on a SHA-256 challenge instead of taking the MD5 one.
            digest_algorithms: vec!["MD5".into()],
            auth_max_failures: 5,
            auth_lock_s: 300,
        }
    }
}

/// `sip.public_addr`: an IP address, or empty for "work it out".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PublicAddr(pub Option<IpAddr>);

impl TryFrom<String> for PublicAddr {
    type Error = String;

    fn try_from(text: String) -> Result<PublicAddr, String> {
        match text.trim() {
            "" => Ok(PublicAddr(None)),
            ip => ip
                .parse()
                .map(|ip| PublicAddr(Some(ip)))
                .map_err(|_| format!("not an IP address: {text:?}")),
        }
    }
}

impl From<PublicAddr> for String {
    fn from(addr: PublicAddr) -> String {
        addr.0.map(|ip| ip.to_string()).unwrap_or_default()
    }
}

/// The source address the kernel would pick to reach the outside: connecting a UDP socket sends
/// nothing, it only consults the routing table.
pub(super) fn outgoing_interface_ip() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    Some(socket.local_addr().ok()?.ip())
}

/// Budgets per source IP for new calls, so one sender cannot take every port.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdmissionSettings {
    /// New INVITEs one source may send per second, on average.
    pub invites_per_second: f64,
    /// New INVITEs one source may send at once.
    pub burst: u32,
    /// Calls from one source still ringing or waiting for their ACK.
    pub pending_per_source: usize,
    /// Share of the RTP ports that unconfirmed calls from sources without a recent ACKed call
    /// may hold; the rest is kept for sources in good standing.
    pub unproven_share: f64,
    /// How long an answered call may wait for its ACK before its port is released.
    pub ack_wait_ms: u64,
}

impl Default for AdmissionSettings {
    fn default() -> Self {
        AdmissionSettings {
            invites_per_second: 20.0,
            burst: 40,
            pending_per_source: 10,
            unproven_share: 0.5,
            // Covers three retransmissions of the 200 at the default T1 (0.5, 1.5, 3.5 s).
            ack_wait_ms: 4000,
        }
    }
}

/// The certificate SIP over TLS presents (`sip.tls_listen`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    /// PEM: the server certificate, then its chain.
    pub cert_file: Option<PathBuf>,
    /// PEM: its private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// PEM: CA certificates trusted for trunks over TLS, besides the system's.
    pub ca_file: Option<PathBuf>,
}

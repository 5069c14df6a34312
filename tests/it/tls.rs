//! SIP over TLS against the built binary with a rustls client: OPTIONS and a whole call on one
//! TLS connection (our Contact says `transport=tls`, our BYE comes back on that connection), and
//! a certificate replaced on reload is what the next handshake presents.

use crate::support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use support::{free_port, Ivr, TempDir};

/// A self-signed certificate for 127.0.0.1, written as PEM files; its DER for the client.
fn certificate(dir: &TempDir, name: &str) -> (String, String, CertificateDer<'static>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let cert_file = dir.0.join(format!("{name}.pem"));
    let key_file = dir.0.join(format!("{name}.key"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    (
        cert_file.to_str().unwrap().to_string(),
        key_file.to_str().unwrap().to_string(),
        cert.der().clone(),
    )
}

async fn connect(port: u16, trusted: &CertificateDer<'static>) -> TlsStream<TcpStream> {
    try_connect(port, trusted)
        .await
        .expect("the handshake succeeds with the certificate the IVR was given")
}

async fn try_connect(
    port: u16,
    trusted: &CertificateDer<'static>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

/// The next whole SIP message on the stream (framed by Content-Length).
async fn next_message(tls: &mut TlsStream<TcpStream>, buf: &mut Vec<u8>) -> String {
    loop {
        if let Some(head) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&buf[..head]).to_string();
            let body: usize = text
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let len = head + 4 + body;
            if buf.len() >= len {
                let message = String::from_utf8_lossy(&buf[..len]).to_string();
                buf.drain(..len);
                return message;
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut chunk))
            .await
            .expect("a message within 10 s")
            .unwrap();
        assert!(n > 0, "the IVR closed the TLS connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn request(
    method: &str,
    local: SocketAddr,
    branch: &str,
    to: &str,
    cseq: u32,
    body: &str,
) -> String {
    let content_type = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "{method} sips:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS {local};branch=z9hG4bK{branch};rport\r\nFrom: <sips:alice@127.0.0.1>;tag=alice\r\nTo: {to}\r\nCall-ID: tls-call\r\nCSeq: {cseq} {method}\r\nContact: <sips:alice@{local};transport=tls>\r\nMax-Forwards: 70\r\n{content_type}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn a_whole_call_over_tls_and_a_certificate_reloaded_without_a_restart() {
    let dir = TempDir::new("tls");
    let (cert, key, der) = certificate(&dir, "first");
    let tls_port = free_port();
    let http = free_port();
    let shipped =
        std::fs::read_to_string(support::project_dir().join("sip-config/flow.toml")).unwrap();
    let flow = dir.0.join("flow.toml");
    std::fs::write(
        &flow,
        shipped.replace("max_call_seconds = 900", "max_call_seconds = 2"),
    )
    .unwrap();
    let ivr = Ivr::start(
        "tls",
        &[
            ("IVR_SIP__TLS_LISTEN", &format!("127.0.0.1:{tls_port}")),
            ("IVR_TLS__CERT_FILE", &cert),
            ("IVR_TLS__KEY_FILE", &key),
            ("IVR_HTTP__LISTEN", &format!("127.0.0.1:{http}")),
            ("IVR_FLOW__FILE", flow.to_str().unwrap()),
        ],
    );
    let mut tls = connect(tls_port, &der).await;
    let local = tls.get_ref().0.local_addr().unwrap();
    let mut buf = Vec::new();
    let no_tag = "<sips:ivr@127.0.0.1>";

    tls.write_all(request("OPTIONS", local, "opt", no_tag, 1, "").as_bytes())
        .await
        .unwrap();
    let options = next_message(&mut tls, &mut buf).await;
    assert!(options.starts_with("SIP/2.0 200"), "{options}");

    let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
        rtp.local_addr().unwrap().port()
    );
    tls.write_all(request("INVITE", local, "inv", no_tag, 2, &sdp).as_bytes())
        .await
        .unwrap();
    let mut answer = next_message(&mut tls, &mut buf).await;
    while answer.starts_with("SIP/2.0 1") {
        answer = next_message(&mut tls, &mut buf).await;
    }
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
    let contact = header(&answer, "Contact").unwrap();
    assert!(
        contact.contains(&format!(":{tls_port};transport=tls")),
        "our Contact is reached over TLS: {contact}"
    );
    let to = header(&answer, "To").unwrap().to_string();
    tls.write_all(request("ACK", local, "ack", &to, 2, "").as_bytes())
        .await
        .unwrap();
    let mut packet = [0u8; 2048];
    tokio::time::timeout(Duration::from_secs(3), rtp.recv_from(&mut packet))
        .await
        .expect("the prompt's RTP flows after the ACK")
        .unwrap();
    // The flow ends the call at 2 s: the BYE comes back on our TLS connection.
    let bye = next_message(&mut tls, &mut buf).await;
    assert!(
        bye.starts_with("BYE sips:alice@") || bye.starts_with("BYE "),
        "{bye}"
    );
    assert!(
        header(&bye, "Via").unwrap().starts_with("SIP/2.0/TLS"),
        "{bye}"
    );
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: tls-call\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        header(&bye, "Via").unwrap(),
        header(&bye, "From").unwrap(),
        header(&bye, "To").unwrap(),
        header(&bye, "CSeq").unwrap()
    );
    tls.write_all(ok.as_bytes()).await.unwrap();

    // A new certificate in the same files, a reload: the next handshake presents it, and a
    // client that trusts only the old one is refused.
    let (new_cert, new_key, new_der) = certificate(&dir, "second");
    std::fs::copy(&new_cert, &cert).unwrap();
    std::fs::copy(&new_key, &key).unwrap();
    ivr.signal("HUP");
    let start = std::time::Instant::now();
    loop {
        let (_, page) = support::http::get(http, "/metrics");
        if support::http::sample(&page, "ivr_reloads_total{outcome=\"ok\"}") == Some(1.0) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "reloaded: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        try_connect(tls_port, &der).await.is_err(),
        "the old certificate is no longer presented"
    );
    let mut fresh = connect(tls_port, &new_der).await;
    let local = fresh.get_ref().0.local_addr().unwrap();
    fresh
        .write_all(request("OPTIONS", local, "opt2", no_tag, 1, "").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    assert!(next_message(&mut fresh, &mut buf)
        .await
        .starts_with("SIP/2.0 200"));
}

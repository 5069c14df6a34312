//! Hostile and unusual requests sent as raw datagrams (no SIP peer sends these on purpose):
//! every one gets the right answer or a silent drop, and the server keeps serving.

use crate::support;

use std::net::UdpSocket;
use std::time::Duration;

use support::Ivr;

pub struct Wire {
    socket: UdpSocket,
    target: String,
}

impl Wire {
    pub fn new(ivr: &Ivr) -> Wire {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        Wire {
            socket,
            target: ivr.addr(),
        }
    }

    fn port(&self) -> u16 {
        self.socket.local_addr().unwrap().port()
    }

    /// Sends `text` (with `\n` turned into CRLF) and returns the first answer that is not 100.
    pub fn ask(&self, text: &str) -> Option<String> {
        let wire = text
            .replace("\r\n", "\n")
            .replace('\n', "\r\n")
            .replace("PORT", &self.port().to_string());
        self.socket.send_to(wire.as_bytes(), &self.target).unwrap();
        let mut buf = [0u8; 65536];
        loop {
            let (n, _) = self.socket.recv_from(&mut buf).ok()?;
            let reply = String::from_utf8_lossy(&buf[..n]).to_string();
            if !reply.starts_with("SIP/2.0 100") {
                return Some(reply);
            }
        }
    }
}

pub fn request(method: &str, extra: &str, body: &str) -> String {
    let body = body.replace('\n', "\r\n");
    format!(
        "{method} sip:ivr@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:PORT;branch=z9hG4bK{}\nFrom: <sip:t@127.0.0.1>;tag=t1\nTo: <sip:ivr@127.0.0.1>\nCall-ID: {}@wire\nCSeq: 1 {method}\nMax-Forwards: 70\n{extra}Content-Length: {}\n\n{body}",
        rand_token(),
        rand_token(),
        body.len()
    )
}

fn rand_token() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    format!(
        "{:x}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

pub fn status(reply: &Option<String>) -> &str {
    reply
        .as_deref()
        .and_then(|r| r.get(8..11))
        .unwrap_or("none")
}

pub const SDP_HEAD: &str = "v=0\no=- 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n";

#[test]
fn protocol_errors_get_their_status_codes() {
    let ivr = Ivr::start("wire", &[]);
    let w = Wire::new(&ivr);
    let register = w.ask(&request("REGISTER", "", ""));
    assert_eq!(status(&register), "405");
    assert!(register
        .unwrap()
        .contains("Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE"));
    let unknown = w.ask(&request("FROBNICATE", "", ""));
    assert_eq!(status(&unknown), "501");
    // A user agent answers an OPTIONS that reached zero (RFC 4475); anything else gets 483.
    let probe = request("OPTIONS", "", "").replace("Max-Forwards: 70", "Max-Forwards: 0");
    assert_eq!(status(&w.ask(&probe)), "200");
    let hops = request("INFO", "", "").replace("Max-Forwards: 70", "Max-Forwards: 0");
    assert_eq!(status(&w.ask(&hops)), "483");
    let stray_bye = request("BYE", "", "").replace(
        "To: <sip:ivr@127.0.0.1>",
        "To: <sip:ivr@127.0.0.1>;tag=nope",
    );
    assert_eq!(status(&w.ask(&stray_bye)), "481");
    let stray_info = request("INFO", "", "").replace(
        "To: <sip:ivr@127.0.0.1>",
        "To: <sip:ivr@127.0.0.1>;tag=nope",
    );
    assert_eq!(status(&w.ask(&stray_info)), "481");
    let stray_cancel = request("CANCEL", "", "");
    assert_eq!(status(&w.ask(&stray_cancel)), "481");
    let require = request("OPTIONS", "Require: 100rel, foo\n", "");
    let reply = w.ask(&require);
    assert_eq!(status(&reply), "420");
    assert!(reply.unwrap().contains("Unsupported: foo\r\n"));
    let bad_cseq = request("OPTIONS", "", "").replace("CSeq: 1 OPTIONS", "CSeq: one OPTIONS");
    assert_eq!(status(&w.ask(&bad_cseq)), "400");
    let short_body = request("OPTIONS", "", "").replace("Content-Length: 0", "Content-Length: 50");
    assert_eq!(status(&w.ask(&short_body)), "400");
}

#[test]
fn unacceptable_and_hostile_sdp_is_refused_with_reasons() {
    let ivr = Ivr::start("sdp", &[]);
    let w = Wire::new(&ivr);
    let video = format!("{SDP_HEAD}m=video 4000 RTP/AVP 31\n");
    let reply = w.ask(&request(
        "INVITE",
        "Content-Type: application/sdp\n",
        &video,
    ));
    assert_eq!(status(&reply), "488");
    assert!(reply.unwrap().contains("Warning: 304"));
    let no_media = SDP_HEAD.to_string();
    assert_eq!(
        status(&w.ask(&request(
            "INVITE",
            "Content-Type: application/sdp\n",
            &no_media
        ))),
        "400"
    );
    let huge = format!("{SDP_HEAD}m=audio 4000 RTP/AVP {}\n", "0 ".repeat(3000));
    assert_eq!(
        status(&w.ask(&request("INVITE", "Content-Type: application/sdp\n", &huge))),
        "400"
    );
    assert_eq!(ivr.count("answered 200 OK"), 0);
}

#[test]
fn garbage_is_dropped_and_the_server_keeps_answering() {
    let mut ivr = Ivr::start("garbage", &[]);
    let w = Wire::new(&ivr);
    let junk: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"\r\n\r\n".to_vec(),
        vec![0xff; 1400],
        b"INVITE\r\n\r\n".to_vec(),
        b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n".to_vec(),
        b"INVITE sip:a SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bK1\r\nContent-Length: 99999999999999999999\r\n\r\n".to_vec(),
        vec![b'A'; 65000],
    ];
    for j in &junk {
        w.socket.send_to(j, &w.target).unwrap();
    }
    assert_eq!(status(&w.ask(&request("OPTIONS", "", ""))), "200");
    ivr.assert_alive();
}

#[test]
fn retransmitted_invite_makes_one_call() {
    let ivr = Ivr::start("retrans", &[]);
    let w = Wire::new(&ivr);
    let sdp = format!("{SDP_HEAD}m=audio 4000 RTP/AVP 0\n");
    let invite = request("INVITE", "Content-Type: application/sdp\n", &sdp);
    let first = w.ask(&invite);
    assert_eq!(status(&first), "200");
    let again = w.ask(&invite);
    assert_eq!(
        status(&again),
        "200",
        "the retransmission is answered with the same 200"
    );
    let tag = |r: &Option<String>| {
        r.as_deref()
            .unwrap()
            .lines()
            .find(|l| l.starts_with("To:"))
            .unwrap()
            .to_string()
    };
    assert_eq!(tag(&first), tag(&again));
    assert_eq!(ivr.count("call offered"), 1);
}

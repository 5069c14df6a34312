//! A registration driven by hand on a fake clock against a scripted registrar.

use super::*;
use crate::sip::message::{self, Message};
use crate::sip::transport::Transport;

const REGISTRAR: &str = "192.0.2.50:5060";

fn trunk() -> Trunk {
    Trunk {
        registrar: "sip:sip.example.net".into(),
        domain: "sip.example.net".into(),
        transport: Transport::Udp,
        targets: vec![REGISTRAR.parse().unwrap()],
        username: "ivr1".into(),
        password: "s3cret".into(),
        expires: 3600,
    }
}

fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message.split("\r\n").find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The registrar's answer to `request`.
fn answer(request: &str, status: &str, extra: &str) -> Response {
    let mut text = format!("SIP/2.0 {status}\r\n");
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        text.push_str(&format!("{name}: {}\r\n", header(request, name).unwrap()));
    }
    text.push_str(extra);
    text.push_str("Content-Length: 0\r\n\r\n");
    match message::parse(text.as_bytes(), REGISTRAR.parse().unwrap()) {
        Ok(Message::Response(r)) => *r,
        other => panic!("not a response: {other:?}"),
    }
}

struct Script {
    reg: Registration,
    now: Instant,
}

impl Script {
    fn new(trunk: Trunk) -> Script {
        let local = "198.51.100.5:5060".parse().unwrap();
        Script {
            reg: Registration::new(trunk, local, "ivr-test", Timers::default()),
            now: Instant::now(),
        }
    }

    fn text(sent: Option<(Destination, Bytes)>) -> String {
        let (dest, bytes) = sent.expect("a REGISTER");
        assert_eq!(dest.addr, REGISTRAR.parse().unwrap());
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// A REGISTER sent, with where it went.
    fn sent_to(sent: Option<(Destination, Bytes)>) -> (SocketAddr, String) {
        let (dest, bytes) = sent.expect("a REGISTER");
        (dest.addr, String::from_utf8(bytes.to_vec()).unwrap())
    }

    fn start(&mut self) -> String {
        Self::text(self.reg.start(self.now))
    }

    fn reply(&mut self, request: &str, status: &str, extra: &str) -> Option<String> {
        let response = answer(request, status, extra);
        assert!(self.reg.owns(&response));
        self.reg
            .on_response(&response, self.now)
            .map(|s| Self::text(Some(s)))
    }

    /// Lets time pass, firing timers; the first REGISTER sent, if any.
    fn advance(&mut self, by: Duration) -> Option<String> {
        let until = self.now + by;
        while let Some(at) = self.reg.next_deadline() {
            if at > until {
                break;
            }
            self.now = self.now.max(at);
            if let Some(sent) = self.reg.on_timer(self.now) {
                return Some(Self::text(Some(sent)));
            }
        }
        self.now = until;
        None
    }
}

const CHALLENGE: &str = "WWW-Authenticate: Digest realm=\"sip.example.net\", nonce=\"n1\", qop=\"auth\", algorithm=MD5\r\n";

/// The Authorization a correct client sends for `request` (its own cnonce and nc).
fn expected_response(request: &str, nonce: &str) -> (String, String) {
    let auth = header(request, "Authorization").expect("credentials");
    let field = |name: &str| {
        let start = auth.find(&format!("{name}=")).unwrap() + name.len() + 1;
        let rest = auth[start..].trim_start_matches('"');
        rest[..rest.find(['"', ',']).unwrap_or(rest.len())].to_string()
    };
    let challenge = Challenge::parse(&format!(
        "Digest realm=\"sip.example.net\", nonce=\"{nonce}\", qop=\"auth\""
    ))
    .unwrap();
    let nc = u32::from_str_radix(&field("nc"), 16).unwrap();
    let again = challenge.answer(
        "ivr1",
        "s3cret",
        "REGISTER",
        "sip:sip.example.net",
        nc,
        &field("cnonce"),
    );
    let recomputed = again.split("response=\"").nth(1).unwrap()[..32].to_string();
    (field("response"), recomputed)
}

#[test]
fn a_challenge_is_answered_and_the_binding_refreshed_before_it_expires() {
    let mut s = Script::new(trunk());
    let first = s.start();
    assert!(
        first.starts_with("REGISTER sip:sip.example.net SIP/2.0\r\n"),
        "{first}"
    );
    assert_eq!(header(&first, "Expires"), Some("3600"));
    assert_eq!(
        header(&first, "Contact"),
        Some("<sip:ivr1@198.51.100.5:5060>")
    );
    assert!(header(&first, "Authorization").is_none());
    let second = s
        .reply(&first, "401 Unauthorized", CHALLENGE)
        .expect("credentials at once");
    assert_eq!(header(&second, "Call-ID"), header(&first, "Call-ID"));
    assert_eq!(header(&second, "CSeq"), Some("2 REGISTER"));
    let (sent, correct) = expected_response(&second, "n1");
    assert_eq!(sent, correct);
    assert!(header(&second, "Authorization")
        .unwrap()
        .contains("nc=00000001"));

    let granted = "Contact: <sip:ivr1@198.51.100.5:5060>;expires=120\r\n";
    assert_eq!(s.reply(&second, "200 OK", granted), None);
    assert_eq!(s.reg.status(), Status::Registered);
    assert_eq!(
        s.advance(Duration::from_secs(95)),
        None,
        "no refresh before 80% of 120 s"
    );
    let refresh = s.advance(Duration::from_secs(2)).expect("refresh at 96 s");
    assert_eq!(
        header(&refresh, "Call-ID"),
        header(&first, "Call-ID"),
        "one Call-ID for life"
    );
    assert_eq!(header(&refresh, "CSeq"), Some("3 REGISTER"));
    assert!(header(&refresh, "Authorization")
        .unwrap()
        .contains("nc=00000002"));
}

#[test]
fn wrong_credentials_fail_and_retry_later_but_a_stale_nonce_does_not() {
    let mut s = Script::new(trunk());
    let first = s.start();
    let second = s.reply(&first, "401 Unauthorized", CHALLENGE).unwrap();
    let stale = CHALLENGE.replace("n1\"", "n2\", stale=true");
    let third = s
        .reply(&second, "401 Unauthorized", &stale)
        .expect("a stale nonce is retried at once");
    assert_eq!(s.reg.status(), Status::Registering);
    let (sent, correct) = expected_response(&third, "n2");
    assert_eq!(sent, correct);
    let again = CHALLENGE.replace("n1", "n2");
    assert_eq!(
        s.reply(&third, "401 Unauthorized", &again),
        None,
        "refused twice on one nonce"
    );
    assert_eq!(s.reg.status(), Status::Failed);
    let wait = s.reg.next_deadline().unwrap() - s.now;
    assert!(
        (24..=36).contains(&wait.as_secs()),
        "first retry after about 30 s: {wait:?}"
    );
    assert!(s.advance(wait).is_some(), "and it comes");
}

#[test]
fn min_expires_is_honoured() {
    let mut s = Script::new(Trunk {
        expires: 60,
        ..trunk()
    });
    let first = s.start();
    let second = s
        .reply(&first, "423 Interval Too Brief", "Min-Expires: 600\r\n")
        .unwrap();
    assert_eq!(header(&second, "Expires"), Some("600"));
}

#[test]
fn an_unanswered_register_is_retried_with_backoff() {
    let mut s = Script::new(trunk());
    s.start();
    let retransmit = s
        .advance(Duration::from_millis(500))
        .expect("Timer E on UDP");
    assert!(retransmit.starts_with("REGISTER"));
    let mut until_failure = 0;
    while s.reg.status() != Status::Failed {
        s.advance(Duration::from_secs(1));
        until_failure += 1;
        assert!(until_failure < 40, "Timer F ends the transaction");
    }
    let first_wait = s.reg.next_deadline().unwrap() - s.now;
    s.advance(first_wait);
    while s.reg.status() != Status::Failed
        || s.reg.next_deadline().unwrap() - s.now < Duration::from_secs(40)
    {
        s.advance(Duration::from_secs(1));
    }
    let second_wait = s.reg.next_deadline().unwrap() - s.now;
    assert!(
        second_wait > first_wait,
        "backoff grows: {first_wait:?} then {second_wait:?}"
    );
}

#[test]
fn leaving_sends_expires_zero() {
    let mut s = Script::new(trunk());
    let first = s.start();
    s.reply(&first, "200 OK", "Expires: 3600\r\n");
    let bye = Script::text(s.reg.unregister(s.now));
    assert_eq!(header(&bye, "Expires"), Some("0"));
    assert_eq!(header(&bye, "Call-ID"), header(&first, "Call-ID"));
    assert_eq!(s.reply(&bye, "200 OK", ""), None);
    assert_eq!(s.reg.status(), Status::Unregistered);
    assert_eq!(s.reg.next_deadline(), None, "nothing more is sent");
}

#[test]
fn a_503_with_retry_after_is_retried_when_the_registrar_said() {
    let mut s = Script::new(trunk());
    let first = s.start();
    assert_eq!(
        s.reply(
            &first,
            "503 Service Unavailable",
            "Retry-After: 7 (maintenance)\r\n"
        ),
        None
    );
    assert_eq!(s.reg.status(), Status::Failed);
    let wait = s.reg.next_deadline().unwrap() - s.now;
    assert!(
        (Duration::from_secs(7)..=Duration::from_millis(8400)).contains(&wait),
        "retry after 7 s plus up to 20%, not the 30 s backoff: {wait:?}"
    );
    assert!(s.advance(Duration::from_secs(6)).is_none());
    let again = s.advance(Duration::from_secs(3)).expect("the retry");
    assert_eq!(header(&again, "Call-ID"), header(&first, "Call-ID"));
}

const BACKUP: &str = "192.0.2.51:5060";

#[test]
fn a_silent_or_failing_server_hands_over_to_the_next_target_then_dns_is_asked_again() {
    let mut s = Script::new(Trunk {
        targets: Vec::new(),
        ..trunk()
    });
    assert!(
        s.reg.start(s.now).is_none(),
        "nothing to send before DNS answers"
    );
    let targets = vec![REGISTRAR.parse().unwrap(), BACKUP.parse().unwrap()];
    let (to, first) = Script::sent_to(s.reg.set_targets(targets.clone(), s.now));
    assert_eq!(to, REGISTRAR.parse().unwrap());
    // Timer F (64·T1 = 32 s) with no answer: the backup, at once, same Call-ID.
    let mut next = None;
    for _ in 0..40 {
        let until = s.now + Duration::from_secs(1);
        while let Some(at) = s.reg.next_deadline().filter(|at| *at <= until) {
            s.now = at;
            if let Some(sent) = s.reg.on_timer(s.now) {
                let (to, text) = Script::sent_to(Some(sent));
                if to != REGISTRAR.parse().unwrap() {
                    next = Some((to, text));
                }
            }
        }
        s.now = until;
        if next.is_some() {
            break;
        }
    }
    let (to, second) = next.expect("the backup is tried");
    assert_eq!(to, BACKUP.parse().unwrap());
    assert_eq!(header(&second, "Call-ID"), header(&first, "Call-ID"));
    assert!(!s.reg.take_wants_locating(), "one target left: no DNS yet");
    // The backup answers 503: every target has failed, so a retry later and a new lookup.
    let response = answer(&second, "503 Service Unavailable", "");
    assert!(s.reg.on_response(&response, s.now).is_none());
    assert_eq!(s.reg.status(), Status::Failed);
    assert!(s.reg.take_wants_locating());
    // New targets while a retry is scheduled change where it goes, not when.
    assert!(s
        .reg
        .set_targets(vec![BACKUP.parse().unwrap()], s.now)
        .is_none());
    let wait = s.reg.next_deadline().unwrap() - s.now;
    s.now += wait;
    let (to, _) = Script::sent_to(s.reg.on_timer(s.now));
    assert_eq!(to, BACKUP.parse().unwrap());
}

#[test]
fn a_503_from_the_first_server_goes_to_the_second_at_once() {
    let mut s = Script::new(Trunk {
        targets: vec![REGISTRAR.parse().unwrap(), BACKUP.parse().unwrap()],
        ..trunk()
    });
    let first = s.start();
    let response = answer(&first, "503 Service Unavailable", "Retry-After: 60\r\n");
    let (to, _) = Script::sent_to(s.reg.on_response(&response, s.now));
    assert_eq!(to, BACKUP.parse().unwrap());
}

#[test]
fn over_tcp_the_flow_is_named_and_kept_alive_with_crlf_pings() {
    let tcp = || Trunk {
        transport: Transport::Tcp,
        ..trunk()
    };
    let mut s = Script::new(tcp());
    let first = s.start();
    let contact = header(&first, "Contact").unwrap();
    assert!(
        contact.contains(";transport=tcp>;+sip.instance=\"<urn:uuid:"),
        "{contact}"
    );
    assert!(contact.ends_with(";reg-id=1"), "{contact}");
    assert_eq!(header(&first, "Supported"), Some("path, outbound"));
    let again = Script::new(tcp()).start();
    assert_eq!(
        header(&again, "Contact"),
        Some(contact),
        "the instance survives a restart"
    );
    let granted = format!("Contact: {contact};expires=600\r\n");
    assert_eq!(s.reply(&first, "200 OK", &granted), None);
    let ping = s.advance(Duration::from_secs(121)).expect("a keep-alive");
    assert_eq!(ping, "\r\n\r\n");
    let next = s.reg.next_deadline().unwrap() - s.now;
    assert!(
        next >= Duration::from_secs(94) && next <= Duration::from_secs(120),
        "{next:?}"
    );
    // UDP registrations carry none of it.
    let udp = Script::new(trunk()).start();
    assert!(!udp.contains("+sip.instance") && !udp.contains("Supported"));
}

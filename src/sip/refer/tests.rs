use super::*;

fn transfer(now: Instant) -> Transfer {
    patient(now, Duration::from_secs(30))
}

fn patient(now: Instant, patience: Duration) -> Transfer {
    let bytes = Bytes::from_static(b"REFER");
    Transfer::new(bytes, Timers::default(), false, patience, now)
}

/// Fires every timer until the transfer is over, which must be for want of an answer: when.
fn run_out(t: &mut Transfer) -> Instant {
    loop {
        let at = t.next_deadline();
        match t.on_timer(at).1 {
            Step::Pending => {}
            step => {
                assert_eq!(step, Step::Over(TransferOutcome::Failed { status: 408 }));
                return at;
            }
        }
    }
}

#[test]
fn accepted_then_notified_to_the_end() {
    let now = Instant::now();
    let mut t = transfer(now);
    assert_eq!(t.on_response(202, now), Step::Pending);
    assert_eq!(t.on_notify(100), Step::Pending);
    assert_eq!(t.on_notify(180), Step::Pending);
    assert_eq!(t.on_notify(200), Step::Over(TransferOutcome::Succeeded));
}

#[test]
fn refused_by_the_caller_or_by_the_target() {
    let now = Instant::now();
    let mut t = transfer(now);
    let refused = Step::Over(TransferOutcome::Failed { status: 405 });
    assert_eq!(t.on_response(405, now), refused);
    let mut t = transfer(now);
    t.on_response(202, now);
    let busy = Step::Over(TransferOutcome::Failed { status: 486 });
    assert_eq!(t.on_notify(486), busy);
}

#[test]
fn silence_ends_it_with_408_whether_or_not_the_refer_was_accepted() {
    let start = Instant::now();
    // Unanswered REFER: retransmitted, then Timer F (32 s, before the patience runs out).
    let mut t = patient(start, Duration::from_secs(60));
    let (again, step) = t.on_timer(t.next_deadline());
    assert_eq!((again.is_some(), step), (true, Step::Pending));
    assert_eq!(run_out(&mut t) - start, Timers::default().timeout());
    // Accepted, but no final NOTIFY within the patience.
    let mut t = transfer(start);
    t.on_response(202, start);
    assert_eq!(run_out(&mut t) - start, Duration::from_secs(30));
}

#[test]
fn sipfrag_status_lines_are_read_and_junk_is_not() {
    assert_eq!(sipfrag_status(b"SIP/2.0 200 OK\r\n"), Some(200));
    assert_eq!(sipfrag_status(b"SIP/2.0 100 Trying"), Some(100));
    assert_eq!(
        sipfrag_status(b"sip/2.0 486 Busy Here\r\nVia: x\r\n"),
        Some(486)
    );
    for junk in [
        &b""[..],
        b"HTTP/1.1 200 OK",
        b"SIP/2.0 99999",
        b"SIP/2.0 42 x",
        b"\xff\xfe",
    ] {
        assert_eq!(sipfrag_status(junk), None, "{junk:?}");
    }
}

#[test]
fn targets_are_uris_that_cannot_break_a_header() {
    assert!(valid_target("sip:agents@pbx.example"));
    assert!(valid_target("sips:agents@pbx.example;transport=tls"));
    assert!(valid_target("tel:+15551234567"));
    for bad in [
        "agents@pbx.example",
        "sip:",
        "http://x",
        "sip:a@b>\r\nX: y",
        "sip:a b@c",
        "sip:a\"@b",
    ] {
        assert!(!valid_target(bad), "{bad:?}");
    }
}

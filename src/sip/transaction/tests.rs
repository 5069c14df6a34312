//! Timer behaviour of the transaction machines, driven by a hand-advanced clock.

use super::*;

fn timers() -> Timers {
    Timers {
        t1: Duration::from_millis(500),
        t2: Duration::from_secs(4),
        t4: Duration::from_secs(5),
    }
}

/// Fires every deadline up to `until`, returning (offset ms, action) for each non-empty one.
fn run_invite(tx: &mut InviteServer, start: Instant, until: Duration) -> Vec<(u128, TimerAction)> {
    let mut out = Vec::new();
    while let Some(at) = tx.next_deadline() {
        if at > start + until {
            break;
        }
        match tx.on_timer(at) {
            TimerAction::Nothing => {}
            action => out.push(((at - start).as_millis(), action)),
        }
    }
    out
}

#[test]
fn lost_ack_retransmits_2xx_doubling_to_t2_then_times_out_at_64_t1() {
    let start = Instant::now();
    let mut tx = InviteServer::new(timers(), false);
    tx.respond(Bytes::from_static(b"100"), 100, start);
    tx.respond(Bytes::from_static(b"200"), 200, start);
    let fired = run_invite(&mut tx, start, Duration::from_secs(40));
    let retransmits: Vec<u128> = fired
        .iter()
        .filter(|(_, a)| matches!(a, TimerAction::Retransmit(b) if b == "200"))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(
        retransmits,
        [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    assert_eq!(fired.last(), Some(&(32000, TimerAction::TimedOut)));
    assert_eq!(tx.state(), InviteState::Terminated);
    assert_eq!(tx.next_deadline(), None, "no timer left running");
}

#[test]
fn ack_stops_retransmission_and_confirms_once() {
    let start = Instant::now();
    let mut tx = InviteServer::new(timers(), false);
    tx.respond(Bytes::from_static(b"200"), 200, start);
    assert!(matches!(
        tx.on_timer(start + Duration::from_millis(500)),
        TimerAction::Retransmit(_)
    ));
    assert!(tx.on_ack(start + Duration::from_millis(600)));
    assert!(
        !tx.on_ack(start + Duration::from_millis(700)),
        "a repeated ACK confirms nothing"
    );
    let fired = run_invite(&mut tx, start, Duration::from_secs(60));
    assert_eq!(fired, [(32600, TimerAction::Terminated)]);
}

#[test]
fn retransmitted_invite_gets_the_last_response_again() {
    let start = Instant::now();
    let mut tx = InviteServer::new(timers(), false);
    assert_eq!(tx.on_retransmission(), None);
    tx.respond(Bytes::from_static(b"100"), 100, start);
    assert_eq!(tx.on_retransmission(), Some(Bytes::from_static(b"100")));
    tx.respond(Bytes::from_static(b"200"), 200, start);
    assert_eq!(tx.on_retransmission(), Some(Bytes::from_static(b"200")));
    tx.on_ack(start);
    assert_eq!(
        tx.on_retransmission(),
        None,
        "absorbed silently once confirmed"
    );
}

#[test]
fn cancel_after_the_answer_cannot_turn_200_into_487() {
    let start = Instant::now();
    let mut tx = InviteServer::new(timers(), false);
    tx.respond(Bytes::from_static(b"200"), 200, start);
    tx.respond(Bytes::from_static(b"487"), 487, start);
    assert_eq!(tx.on_retransmission(), Some(Bytes::from_static(b"200")));
    assert_eq!(tx.state(), InviteState::Accepted);
}

#[test]
fn cancel_before_the_answer_487_waits_for_ack_then_lingers_t4() {
    let start = Instant::now();
    let mut tx = InviteServer::new(timers(), false);
    tx.respond(Bytes::from_static(b"487"), 487, start);
    assert_eq!(tx.state(), InviteState::Completed);
    assert!(matches!(
        tx.on_timer(start + Duration::from_millis(500)),
        TimerAction::Retransmit(_)
    ));
    assert!(tx.on_ack(start + Duration::from_secs(1)));
    let fired = run_invite(&mut tx, start, Duration::from_secs(60));
    assert_eq!(fired, [(6000, TimerAction::Terminated)]);
}

#[test]
fn over_tcp_a_failure_is_not_retransmitted_and_ack_ends_at_once() {
    let start = Instant::now();
    let mut tx = InviteServer::new(timers(), true);
    tx.respond(Bytes::from_static(b"486"), 486, start);
    assert_eq!(tx.next_deadline(), Some(start + Duration::from_secs(32)));
    tx.on_ack(start);
    assert_eq!(tx.on_timer(start), TimerAction::Terminated);
}

#[test]
fn non_invite_server_repeats_its_answer_until_timer_j() {
    let start = Instant::now();
    let mut tx = NonInviteServer::new(timers(), false);
    tx.respond(Bytes::from_static(b"200"), 200, start);
    assert_eq!(tx.on_retransmission(), Some(Bytes::from_static(b"200")));
    assert_eq!(
        tx.on_timer(start + Duration::from_secs(31)),
        TimerAction::Nothing
    );
    assert_eq!(
        tx.on_timer(start + Duration::from_secs(32)),
        TimerAction::Terminated
    );
    let mut tcp = NonInviteServer::new(timers(), true);
    tcp.respond(Bytes::from_static(b"200"), 200, start);
    assert_eq!(tcp.on_timer(start), TimerAction::Terminated);
}

#[test]
fn bye_client_retransmits_on_udp_and_times_out_at_timer_f() {
    let start = Instant::now();
    let mut tx = NonInviteClient::new(Bytes::from_static(b"BYE"), timers(), false, start);
    let mut sent = Vec::new();
    let mut outcome = None;
    while let Some(at) = tx.next_deadline() {
        match tx.on_timer(at) {
            TimerAction::Retransmit(_) => sent.push((at - start).as_millis()),
            TimerAction::TimedOut => {
                outcome = Some((at - start).as_millis());
                break;
            }
            _ => {}
        }
    }
    assert_eq!(
        sent,
        [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    assert_eq!(outcome, Some(32000));
}

#[test]
fn bye_client_completes_on_final_response_and_lingers_t4() {
    let start = Instant::now();
    let mut tx = NonInviteClient::new(Bytes::from_static(b"BYE"), timers(), false, start);
    assert!(!tx.on_response(100, start));
    assert!(tx.on_response(200, start + Duration::from_millis(10)));
    assert!(
        !tx.on_response(200, start + Duration::from_millis(20)),
        "retransmitted 200"
    );
    assert_eq!(tx.final_status(), Some(200));
    assert_eq!(
        tx.next_deadline(),
        Some(start + Duration::from_millis(5010))
    );
    let tcp = NonInviteClient::new(Bytes::from_static(b"BYE"), timers(), true, start);
    assert_eq!(
        tcp.next_deadline(),
        Some(start + Duration::from_secs(32)),
        "no Timer E on TCP"
    );
}

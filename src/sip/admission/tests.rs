//! Admission budgets on a fake clock: per source, per share, for trunks.
use super::*;

fn limits() -> AdmissionLimits {
    AdmissionLimits {
        invites_per_second: 10.0,
        burst: 20.0,
        pending_per_source: 5,
        capacity: 100,
        unproven_share: 0.5,
    }
}

/// A stranger at `s`.
fn ip(s: &str) -> Caller {
    Caller {
        ip: s.parse().unwrap(),
        origin: Origin::Stranger,
    }
}

#[test]
fn a_source_gets_its_burst_then_its_rate_with_retry_after() {
    let mut a = Admission::new(AdmissionLimits {
        pending_per_source: 1000,
        capacity: 1000,
        ..limits()
    });
    let t0 = Instant::now();
    let flood = ip("203.0.113.9");
    for _ in 0..20 {
        assert_eq!(a.on_invite(flood, t0), Verdict::Admit);
    }
    assert_eq!(
        a.on_invite(flood, t0),
        Verdict::Busy {
            refusal: Refusal::Rate,
            retry_after: 1
        }
    );
    // A tenth of a second later, one more token.
    let t1 = t0 + Duration::from_millis(100);
    assert_eq!(a.on_invite(flood, t1), Verdict::Admit);
    assert!(matches!(a.on_invite(flood, t1), Verdict::Busy { .. }));
    // Another source is untouched.
    assert_eq!(a.on_invite(ip("192.0.2.1"), t1), Verdict::Admit);
}

#[test]
fn a_source_that_ignores_retry_after_gets_silence() {
    let mut a = Admission::new(limits());
    let t0 = Instant::now();
    let flood = ip("203.0.113.9");
    let verdicts: Vec<_> = (0..200).map(|_| a.on_invite(flood, t0)).collect();
    assert!(matches!(
        verdicts[5],
        Verdict::Busy {
            refusal: Refusal::Pending,
            ..
        }
    ));
    assert!(matches!(verdicts[199], Verdict::Ignore { .. }));
    let report = a.take_refusals();
    let total: u64 = report.iter().map(|(_, _, n)| n).sum();
    assert_eq!(total, 195);
    assert!(
        a.take_refusals().is_empty(),
        "counts reset after each report"
    );
}

#[test]
fn pending_calls_are_capped_per_source_and_freed_by_ack_or_end() {
    let mut a = Admission::new(limits());
    let t0 = Instant::now();
    let scanner = ip("203.0.113.9");
    for _ in 0..5 {
        assert_eq!(a.on_invite(scanner, t0), Verdict::Admit);
    }
    assert!(matches!(
        a.on_invite(scanner, t0),
        Verdict::Busy {
            refusal: Refusal::Pending,
            ..
        }
    ));
    a.finished(scanner);
    assert_eq!(a.on_invite(scanner, t0), Verdict::Admit);
    a.confirmed(scanner, t0);
    assert_eq!(a.on_invite(scanner, t0), Verdict::Admit);
}

fn trunk(s: &str, origin: Origin) -> Caller {
    Caller {
        ip: s.parse().unwrap(),
        origin,
    }
}

#[test]
fn a_forged_udp_flood_in_a_trunks_name_leaves_its_connected_calls_alone() {
    let mut a = Admission::new(limits());
    let t0 = Instant::now();
    let forged = trunk("198.51.100.7", Origin::Trunk);
    let admitted = (0..20)
        .filter(|_| a.on_invite(forged, t0) == Verdict::Admit)
        .count();
    assert_eq!(
        admitted, 5,
        "UDP in the trunk's name keeps the per-source budget"
    );
    // Over TCP or TLS the same address is proven: its calls are counted apart and answer to
    // the capacity, not to a per-source or per-second budget.
    let connected = trunk("198.51.100.7", Origin::TrunkConnected);
    let admitted = (0..150)
        .filter(|_| a.on_invite(connected, t0) == Verdict::Admit)
        .count();
    assert_eq!(admitted, 100);
    a.finished(connected);
    assert_eq!(a.on_invite(connected, t0), Verdict::Admit);
}

#[test]
fn trunk_calls_are_outside_the_unproven_share() {
    let mut a = Admission::new(limits());
    let t0 = Instant::now();
    for i in 0..100u8 {
        a.on_invite(ip(&format!("203.0.113.{i}")), t0);
    }
    assert!(matches!(
        a.on_invite(ip("192.0.2.9"), t0),
        Verdict::Busy {
            refusal: Refusal::Share,
            ..
        }
    ));
    assert_eq!(
        a.on_invite(trunk("198.51.100.7", Origin::Trunk), t0),
        Verdict::Admit
    );
    assert_eq!(
        a.on_invite(trunk("198.51.100.7", Origin::TrunkConnected), t0),
        Verdict::Admit
    );
}

#[test]
fn unproven_sources_share_half_and_good_standing_keeps_the_rest() {
    let mut a = Admission::new(limits());
    let t0 = Instant::now();
    let known = ip("192.0.2.1");
    assert_eq!(a.on_invite(known, t0), Verdict::Admit);
    a.confirmed(known, t0);
    // Many spoofed sources, one unconfirmed call each: half the capacity, then no more.
    let admitted = (0..100u8)
        .filter(|i| a.on_invite(ip(&format!("203.0.113.{i}")), t0) == Verdict::Admit)
        .count();
    assert_eq!(admitted, 50);
    assert!(matches!(
        a.on_invite(ip("198.51.100.1"), t0),
        Verdict::Busy {
            refusal: Refusal::Share,
            ..
        }
    ));
    // The caller in good standing still gets in.
    assert_eq!(a.on_invite(known, t0), Verdict::Admit);
    // When the flood's calls end, strangers get in again.
    a.finished(ip("203.0.113.0"));
    assert_eq!(a.on_invite(ip("198.51.100.1"), t0), Verdict::Admit);
}

#[test]
fn good_standing_expires() {
    let mut a = Admission::new(limits());
    let t0 = Instant::now();
    let known = ip("192.0.2.1");
    a.on_invite(known, t0);
    a.confirmed(known, t0);
    let later = t0 + GOOD_STANDING + Duration::from_secs(1);
    for i in 0..50u8 {
        a.on_invite(ip(&format!("203.0.113.{i}")), later);
    }
    assert!(matches!(
        a.on_invite(known, later),
        Verdict::Busy {
            refusal: Refusal::Share,
            ..
        }
    ));
}

#[test]
fn idle_sources_are_forgotten_when_the_table_fills() {
    let mut a = Admission::new(AdmissionLimits {
        capacity: 1_000_000,
        unproven_share: 1.0,
        ..limits()
    });
    let t0 = Instant::now();
    for i in 0..MAX_SOURCES as u32 {
        let source = Caller {
            ip: IpAddr::from(i.to_be_bytes()),
            origin: Origin::Stranger,
        };
        assert_eq!(a.on_invite(source, t0), Verdict::Admit);
        a.finished(source);
    }
    assert!(matches!(
        a.on_invite(ip("192.0.2.1"), t0),
        Verdict::Busy {
            refusal: Refusal::Sources,
            ..
        }
    ));
    let later = t0 + Duration::from_secs(10);
    assert_eq!(a.on_invite(ip("192.0.2.1"), later), Verdict::Admit);
    assert_eq!(a.sources(), 1, "refilled, idle sources were dropped");
}

#[test]
fn one_unproven_source_takes_at_most_a_quarter_of_the_share() {
    let mut a = Admission::new(AdmissionLimits {
        capacity: 20,
        ..limits()
    });
    let t0 = Instant::now();
    let scanner = ip("203.0.113.9");
    let admitted = (0..10)
        .filter(|_| a.on_invite(scanner, t0) == Verdict::Admit)
        .count();
    assert_eq!(
        admitted, 3,
        "a quarter of the 10 unproven places, rounded up"
    );
    for i in 0..7u8 {
        assert_eq!(a.on_invite(ip(&format!("192.0.2.{i}")), t0), Verdict::Admit);
    }
}

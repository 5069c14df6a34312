use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::media::rtcp::packet::{ReportBlock, Writer};

const OURS: u32 = 0xcafe_babe;
const CALLER: u32 = 0x1122_3344;

fn parts(packet: &[u8]) -> Vec<Part> {
    let mut out = Vec::new();
    packet::read(packet, |p| out.push(p)).unwrap();
    out
}

/// The caller's RR on our stream, echoing `last_sr` after holding it `held`.
fn caller_report(last_sr: u32, held: Duration, lost: i32, jitter: u32) -> Vec<u8> {
    let mut buf = [0u8; 100];
    let mut w = Writer::new(&mut buf);
    let block = ReportBlock {
        ssrc: OURS,
        fraction_lost: 26,
        cumulative_lost: lost,
        highest_seq: 1000,
        jitter,
        last_sr,
        delay_since_last_sr: (held.as_micros() * 65536 / 1_000_000) as u32,
    };
    w.report(CALLER, None, Some(&block)).unwrap();
    let len = w.len();
    buf[..len].to_vec()
}

#[test]
fn reports_come_every_five_seconds_give_or_take_half() {
    let start = Instant::now();
    let mut session = RtcpSession::new(OURS, 8000, start);
    let mut buf = [0u8; 200];
    let mut now = start;
    let mut times = Vec::new();
    // Enough intervals that their mean (σ ≈ 1.44 s / √n) sits within ±1 s of 5 s with certainty,
    // not with 3σ as 20 of them did.
    while times.len() < 400 {
        now += Duration::from_millis(20);
        if session.due(now) {
            session
                .write_report(now, SystemTime::now(), 0, &mut buf)
                .unwrap();
            times.push(now);
        }
    }
    let first = times[0] - start;
    assert!(first >= Duration::from_millis(1240) && first <= Duration::from_millis(3760));
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(2500) && gap <= Duration::from_millis(7520),
            "{gap:?}"
        );
    }
    let mean = (times[399] - times[0]) / 399;
    assert!(
        mean > Duration::from_secs(4) && mean < Duration::from_secs(6),
        "{mean:?}"
    );
}

#[test]
fn a_sender_report_counts_what_we_sent_and_reports_on_the_caller() {
    let start = Instant::now();
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut session = RtcpSession::new(OURS, 8000, start);
    // The caller's 100 packets, of which 3 never came (seq 10, 20, 30), 20 ms apart.
    for seq in 0..103u16 {
        if ![10, 20, 30].contains(&seq) {
            let arrival = wall + Duration::from_millis(20 * u64::from(seq));
            session.on_rtp_received(CALLER, seq, 160 * u32::from(seq), arrival, true);
        }
    }
    for _ in 0..50 {
        session.on_rtp_sent(160);
    }
    let mut buf = [0u8; 200];
    let len = session.write_report(start, wall, 12345, &mut buf).unwrap();
    let got = parts(&buf[..len]);
    let Part::Sender { ssrc, info } = got[0] else {
        panic!("an SR first: {got:?}")
    };
    assert_eq!(ssrc, OURS);
    assert_eq!(
        (info.packets, info.octets, info.rtp_timestamp),
        (50, 8000, 12345)
    );
    assert_eq!(info.ntp >> 32, 1_800_000_000 + 2_208_988_800);
    let Part::Report { block, .. } = got[1] else {
        panic!("a block on the caller: {got:?}")
    };
    assert_eq!(block.ssrc, CALLER);
    assert_eq!(block.cumulative_lost, 3);
    assert_eq!(block.fraction_lost, (3 * 256 / 103) as u8);
    assert_eq!(block.highest_seq, 102);
    assert_eq!(block.jitter, 0, "evenly spaced packets have no jitter");
    // The next interval: nothing sent, nothing lost: an RR whose fraction is back to zero.
    session.on_rtp_received(CALLER, 103, 160 * 103, wall, true);
    let len = session.write_report(start, wall, 0, &mut buf).unwrap();
    let got = parts(&buf[..len]);
    assert!(matches!(got[0], Part::Report { reporter: OURS, block } if block.fraction_lost == 0));
}

#[test]
fn jitter_follows_rfc_3550_a8() {
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut session = RtcpSession::new(OURS, 8000, Instant::now());
    // Packets 20 ms apart in RTP time arriving alternately 10 ms early and late: each transit
    // step is 20 ms (160 units); J converges on 160 units, 20 ms.
    for seq in 0..2000u16 {
        let skew: i64 = if seq % 2 == 0 { -10 } else { 10 };
        let ms = 20 * i64::from(seq) + skew + 100;
        let arrival = wall + Duration::from_millis(ms as u64);
        session.on_rtp_received(CALLER, seq, 160 * u32::from(seq), arrival, true);
    }
    let jitter = session.quality().jitter;
    assert!(
        jitter > Duration::from_millis(19) && jitter <= Duration::from_millis(20),
        "{jitter:?}"
    );
    // Telephone-events hold their timestamp through a key: they do not count.
    let before = session.quality().jitter;
    for seq in 2000..2050u16 {
        session.on_rtp_received(CALLER, seq, 999, wall, false);
    }
    assert_eq!(session.quality().jitter, before);
}

#[test]
fn the_round_trip_comes_from_the_callers_echo_of_our_sender_report() {
    let start = Instant::now();
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut session = RtcpSession::new(OURS, 8000, start);
    session.on_rtp_sent(160);
    let mut buf = [0u8; 200];
    let len = session.write_report(start, wall, 0, &mut buf).unwrap();
    let Part::Sender { info, .. } = parts(&buf[..len])[0] else {
        panic!()
    };
    // The caller holds our SR 1 s and its report reaches us 1.08 s after we sent: 80 ms.
    let echo = caller_report(ntp_middle(info.ntp), Duration::from_secs(1), 7, 80);
    session
        .on_rtcp(&echo, wall + Duration::from_millis(1080))
        .unwrap();
    let q = session.quality();
    let rtt = q.rtt.expect("a round trip");
    assert!(
        rtt.abs_diff(Duration::from_millis(80)) < Duration::from_millis(1),
        "{rtt:?}"
    );
    assert_eq!((q.peer_lost, q.peer_fraction_lost), (Some(7), Some(26)));
    assert_eq!(q.peer_jitter, Some(Duration::from_millis(10)));
    assert_eq!(q.reports_heard, 1);
}

#[test]
fn reports_from_another_stream_or_about_another_source_change_nothing() {
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut session = RtcpSession::new(OURS, 8000, Instant::now());
    session.on_rtp_received(CALLER, 1, 160, wall, true);
    // A stranger's SSRC reporting on us.
    let mut stranger = caller_report(0, Duration::ZERO, 999, 999);
    stranger[4..8].copy_from_slice(&0xdead_beefu32.to_be_bytes());
    session.on_rtcp(&stranger, wall).unwrap();
    // The caller reporting on some other source.
    let mut other = caller_report(0, Duration::ZERO, 999, 999);
    other[8..12].copy_from_slice(&0x0bad_f00du32.to_be_bytes());
    session.on_rtcp(&other, wall).unwrap();
    assert_eq!(session.quality().reports_heard, 0);
    assert_eq!(session.quality().peer_lost, None);
    assert!(session.on_rtcp(&[0x80, 0, 0, 0], wall).is_err());
}

#[test]
fn the_goodbye_is_a_last_report_and_a_bye() {
    let mut session = RtcpSession::new(OURS, 8000, Instant::now());
    let mut buf = [0u8; 200];
    let len = session
        .write_goodbye(SystemTime::now(), 0, &mut buf)
        .unwrap();
    let got = parts(&buf[..len]);
    assert_eq!(got, [Part::Goodbye { ssrc: OURS }]);
    // An RR with no blocks, an SDES and the BYE.
    assert_eq!(&buf[..2], &[0x80, 201]);
}

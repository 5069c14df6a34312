//! Packet sequences and the digits they must give: each row is one way phones, trunks and
//! networks have delivered key presses.

use super::*;

/// (arrival ms, RTP timestamp, event code, End bit, duration)
type Packet = (u64, u32, u8, bool, u16);

fn decode(packets: &[Packet]) -> String {
    let start = Instant::now();
    let mut decoder = Rfc4733Decoder::new(8000, Duration::from_millis(1000));
    let mut digits = String::new();
    for &(ms, ts, code, end, duration) in packets {
        let now = start + Duration::from_millis(ms);
        let d = duration.to_be_bytes();
        let payload = [code, if end { 0x80 | 10 } else { 10 }, d[0], d[1]];
        digits.extend(decoder.on_packet(ts, &payload, now));
    }
    digits
}

/// A press as a real phone sends it: packets every 20 ms from `at`, three redundant Ends.
fn press(at: u64, ts: u32, code: u8, packets: u16) -> Vec<Packet> {
    let mut out: Vec<Packet> = (0..packets)
        .map(|i| (at + 20 * i as u64, ts, code, false, 160 * i))
        .collect();
    let end = 160 * packets;
    for k in 0..3 {
        out.push((at + 20 * packets as u64 + k, ts, code, true, end));
    }
    out
}

/// The ten packets of /usr/share/sip-tester/dtmf_2833_<key>.pcap, replayed at `at`:
/// the same timestamp and durations every time it is played.
fn sipp_pcap(at: u64, key: u8) -> Vec<Packet> {
    let ts = match key {
        1 => 13280,
        11 => 92640,
        _ => 40000 + key as u32 * 1000,
    };
    let mut out: Vec<Packet> = (0..7)
        .map(|i| (at + 20 * i, ts, key, false, 320 * i as u16))
        .collect();
    out.extend([
        (at + 140, ts, key, true, 2240),
        (at + 140, ts, key, true, 2240),
        (at + 140, ts, key, true, 2240),
    ]);
    out
}

fn concat(parts: &[Vec<Packet>]) -> Vec<Packet> {
    parts.concat()
}

#[test]
fn a_press_with_three_ends_is_one_digit() {
    assert_eq!(decode(&press(0, 1000, 1, 5)), "1");
}

#[test]
fn presses_of_every_key_map_to_their_digits() {
    let keys: Vec<Vec<Packet>> = (0..16u8)
        .map(|k| press(k as u64 * 300, 1000 + k as u32 * 4000, k, 4))
        .collect();
    assert_eq!(decode(&concat(&keys)), "0123456789*#ABCD");
}

#[test]
fn first_packets_lost_still_gives_the_digit() {
    let mut p = press(0, 1000, 7, 6);
    p.drain(..3);
    assert_eq!(decode(&p), "7");
    let only_ends: Vec<Packet> = press(0, 1000, 5, 6).into_iter().filter(|p| p.3).collect();
    assert_eq!(decode(&only_ends), "5");
}

#[test]
fn every_end_lost_the_next_event_closes_it() {
    let mut a = press(0, 1000, 1, 5);
    a.retain(|p| !p.3);
    assert_eq!(decode(&concat(&[a.clone(), press(400, 5000, 2, 5)])), "12");
    // Same key again after the timeout closed the first press.
    assert_eq!(decode(&concat(&[a, press(2000, 20000, 1, 5)])), "11");
}

#[test]
fn retransmitted_and_duplicated_packets_are_not_new_presses() {
    let mut p = press(0, 1000, 3, 5);
    let dup = p[2];
    p.insert(3, (dup.0 + 1, dup.1, dup.2, dup.3, dup.4));
    let late_end = *p.last().unwrap();
    p.push((late_end.0 + 120, late_end.1, late_end.2, true, late_end.4));
    assert_eq!(decode(&p), "3");
}

#[test]
fn reordered_end_before_a_middle_packet_is_one_digit() {
    let mut p = press(0, 1000, 4, 5);
    let middle = p.remove(2);
    p.insert(6, (middle.0 + 100, middle.1, middle.2, middle.3, middle.4));
    assert_eq!(decode(&p), "4");
}

#[test]
fn long_press_whose_duration_wraps_into_a_new_segment_is_one_digit() {
    // 9 s at 8 kHz: segment one runs to 65535, segment two starts at ts + 65535 (RFC 4733 §2.5.1.3).
    let mut p: Vec<Packet> = (0..409)
        .map(|i| (20 * i as u64, 1000, 9, false, (160 * i).min(65535) as u16))
        .collect();
    let seg2 = 1000 + 65535;
    p.extend((0..40).map(|i| (8180 + 20 * i as u64, seg2, 9, false, 160 * i as u16)));
    p.extend([(8980, seg2, 9, true, 6400), (8981, seg2, 9, true, 6400)]);
    assert_eq!(decode(&p), "9");
}

#[test]
fn re_stamped_packets_of_one_press_are_one_digit() {
    let p: Vec<Packet> = (0..6)
        .map(|i| {
            (
                20 * i as u64,
                1000 + 160 * i as u32,
                6,
                i == 5,
                160 * (i as u16 + 1),
            )
        })
        .collect();
    assert_eq!(decode(&p), "6");
}

#[test]
fn interleaved_events_report_in_order_once_each() {
    let a = press(0, 1000, 1, 5);
    let b = press(60, 1480, 2, 5);
    let mut mixed: Vec<Packet> = a.into_iter().chain(b).collect();
    mixed.sort_by_key(|p| p.0);
    assert_eq!(decode(&mixed), "12");
}

#[test]
fn the_same_key_twice_with_new_timestamps_is_two_digits() {
    assert_eq!(
        decode(&concat(&[press(0, 1000, 5, 4), press(200, 2600, 5, 4)])),
        "55"
    );
}

#[test]
fn sipp_pcap_replays_of_one_file_are_separate_presses() {
    let keyed = concat(&[
        sipp_pcap(0, 1),
        sipp_pcap(500, 11),
        sipp_pcap(1000, 1),
        sipp_pcap(1500, 1),
        sipp_pcap(2000, 11),
    ]);
    assert_eq!(decode(&keyed), "1#11#");
}

#[test]
fn unknown_events_and_short_payloads_are_ignored() {
    let mut p = press(0, 1000, 16, 4); // flash
    p.extend(press(200, 3000, 200, 4));
    assert_eq!(decode(&p), "");
    let mut decoder = Rfc4733Decoder::new(8000, Duration::from_secs(1));
    assert_eq!(decoder.on_packet(1, &[1, 0, 0], Instant::now()), None);
    assert_eq!(decoder.on_packet(1, &[], Instant::now()), None);
}

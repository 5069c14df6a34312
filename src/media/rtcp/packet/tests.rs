use super::*;

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn parts(packet: &[u8]) -> Result<Vec<Part>, Malformed> {
    let mut out = Vec::new();
    read(packet, |p| out.push(p))?;
    Ok(out)
}

/// A compound SR + SDES as a softphone sends it, written out by hand from RFC 3550 §6.4.1.
const PEER_SR: &str = "81c8000c 11223344 e8f0a1b2 80000000 0001f400 00000064 00003e80 \
                       cafebabe 05000010 0000abcd 00000028 a1b28000 00018000 \
                       81ca0003 11223344 01047065 65720000";

#[test]
fn a_peers_sender_report_is_read_field_by_field() {
    let got = parts(&hex(PEER_SR)).unwrap();
    assert_eq!(
        got,
        [
            Part::Sender {
                ssrc: 0x1122_3344,
                info: SenderInfo {
                    ntp: 0xe8f0_a1b2_8000_0000,
                    rtp_timestamp: 128_000,
                    packets: 100,
                    octets: 16_000,
                },
            },
            Part::Report {
                reporter: 0x1122_3344,
                block: ReportBlock {
                    ssrc: 0xcafe_babe,
                    fraction_lost: 5,
                    cumulative_lost: 16,
                    highest_seq: 0xabcd,
                    jitter: 40,
                    last_sr: 0xa1b2_8000,
                    delay_since_last_sr: 0x1_8000,
                },
            },
        ]
    );
}

#[test]
fn what_we_write_reads_back_and_has_the_rfc_layout() {
    let mut buf = [0u8; 200];
    let mut w = Writer::new(&mut buf);
    let info = SenderInfo {
        ntp: 1 << 40,
        rtp_timestamp: 7,
        packets: 3,
        octets: 480,
    };
    let block = ReportBlock {
        ssrc: 9,
        fraction_lost: 64,
        cumulative_lost: -2,
        highest_seq: 70_000,
        jitter: 12,
        last_sr: 5,
        delay_since_last_sr: 6,
    };
    w.report(1, Some(&info), Some(&block)).unwrap();
    w.cname(1, b"ivr-00000001").unwrap();
    w.goodbye(1).unwrap();
    let len = w.len();
    // SR with one block: 52 bytes; SDES: 8 + 2 + 12 + 1 padded to 24; BYE: 8.
    assert_eq!(len, 52 + 24 + 8);
    assert_eq!(&buf[..4], &[0x81, 200, 0, 12]);
    assert_eq!(&buf[52..56], &[0x81, 202, 0, 5]);
    assert_eq!(&buf[76..80], &[0x81, 203, 0, 1]);
    let got = parts(&buf[..len]).unwrap();
    assert_eq!(
        got,
        [
            Part::Sender { ssrc: 1, info },
            Part::Report { reporter: 1, block },
            Part::Goodbye { ssrc: 1 },
        ]
    );
}

#[test]
fn a_buffer_too_small_is_refused_not_overrun() {
    let mut buf = [0u8; 30];
    let mut w = Writer::new(&mut buf);
    assert!(w.report(1, Some(&SenderInfo::default()), None).is_some());
    assert!(w.cname(1, b"ivr-00000001").is_none());
    assert_eq!(w.len(), 28);
}

#[test]
fn lying_lengths_and_foreign_packets_are_refused_whole() {
    let good = hex(PEER_SR);
    // A length word that runs past the end.
    let mut long = good.clone();
    long[3] = 0x40;
    assert_eq!(parts(&long), Err(Malformed::Length));
    // A report count that promises more blocks than the length holds.
    let mut blocks = good.clone();
    blocks[0] = 0x85;
    assert_eq!(parts(&blocks), Err(Malformed::Length));
    // A valid first packet followed by a truncated one: nothing is handed over.
    let truncated = &good[..good.len() - 2];
    assert!(parts(truncated).is_err());
    // RTP, SDES-first, version 1, empty.
    assert_eq!(
        parts(&hex("80000001 00000000 00000000")),
        Err(Malformed::NotReport)
    );
    assert_eq!(parts(&good[52..]), Err(Malformed::NotReport));
    let mut v1 = good.clone();
    v1[0] = 0x41;
    assert_eq!(parts(&v1), Err(Malformed::Version));
    assert_eq!(parts(&[]), Err(Malformed::Length));
    assert_eq!(parts(&[0x80, 201]), Err(Malformed::Length));
}

#[test]
fn every_prefix_and_mutation_of_a_report_is_safe() {
    let good = hex(PEER_SR);
    for n in 0..good.len() {
        let _ = parts(&good[..n]);
    }
    for i in 0..good.len() {
        for bit in 0..8 {
            let mut m = good.clone();
            m[i] ^= 1 << bit;
            let _ = parts(&m);
        }
    }
}

#[test]
fn muxed_rtcp_is_told_from_rtp_by_its_type() {
    assert!(is_rtcp(&hex(PEER_SR)));
    // PCMU with and without the marker bit, telephone-event 101.
    for second in [0x00, 0x80, 101, 0x80 | 101] {
        assert!(!is_rtcp(&[0x80, second, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]));
    }
}

//! What SRTP adds to a call: nanoseconds to seal one outgoing PCMU frame and to check and open
//! one incoming, and what 50 of each a second cost beside a whole call's CPU.
//! Run: `cargo bench --bench srtp` (prints figures; no pass or fail).

use std::hint::black_box;
use std::time::Instant;

use ivr::media::srtp::{Inbound, InboundKey, MasterKey, Outbound, Suite};

const PACKETS: u32 = 200_000;

fn frame(seq: u16) -> [u8; 12 + 160] {
    let mut p = [0xffu8; 172];
    p[0] = 0x80;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[8..12].copy_from_slice(&7u32.to_be_bytes());
    p
}

fn main() {
    for suite in Suite::ALL {
        let key = MasterKey::random();
        let mut out = Outbound::new(suite, &key);
        let mut sealed = Vec::with_capacity(PACKETS as usize);
        let mut buf = [0u8; 256];
        let start = Instant::now();
        for i in 0..PACKETS {
            let plain = frame(i as u16);
            buf[..plain.len()].copy_from_slice(&plain);
            let len = out.protect_rtp(black_box(&mut buf), plain.len()).unwrap();
            if i < 70_000 {
                sealed.push(buf[..len].to_vec());
            }
        }
        let protect_ns = start.elapsed().as_nanos() as f64 / f64::from(PACKETS);

        let key = InboundKey {
            master: key,
            mki: None,
            lifetime: 1 << 48,
        };
        let mut inbound = Inbound::new(suite, &key);
        let start = Instant::now();
        for packet in sealed.iter_mut() {
            let checked = inbound.check_rtp(packet).unwrap();
            black_box(inbound.accept_rtp(&checked, packet));
        }
        let open_ns = start.elapsed().as_nanos() as f64 / sealed.len() as f64;
        // A call sends and receives 50 frames a second each way.
        let per_call_second_us = 50.0 * (protect_ns + open_ns) / 1000.0;
        println!(
            "{}: protect {protect_ns:.0} ns, check+decrypt {open_ns:.0} ns per 160-byte frame; \
             {per_call_second_us:.1} µs of CPU per call-second ({:.2}% of one core for 1000 calls)",
            suite.name(),
            per_call_second_us * 1000.0 / 1e6 * 100.0
        );
    }
}

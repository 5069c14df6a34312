use super::derive::derive_for_test;
use super::replay::ReplayWindow;
use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The master key of RFC 3711 Appendix B.3, also used by libsrtp's packet vectors.
fn rfc_master() -> MasterKey {
    let key = hex("E1F97A0D3E018BE0D64FA32C06DE4139");
    let salt = hex("0EC675AD498AFEEBB6960B3AABE6");
    MasterKey::new(key.try_into().unwrap(), salt.try_into().unwrap())
}

fn inbound_key(master: MasterKey) -> InboundKey {
    InboundKey {
        master,
        mki: None,
        lifetime: 1 << 48,
    }
}

#[test]
fn session_keys_match_rfc3711_appendix_b3() {
    let master = rfc_master();
    let mut cipher_key = [0u8; 16];
    derive_for_test(&master, 0, &mut cipher_key);
    assert_eq!(cipher_key.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
    let mut salt = [0u8; 14];
    derive_for_test(&master, 2, &mut salt);
    assert_eq!(salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
    let mut auth_key = [0u8; 20];
    derive_for_test(&master, 1, &mut auth_key);
    assert_eq!(
        auth_key.to_vec(),
        hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
    );
}

const PLAIN_RTP: &str = "800f1234decafbadcafebabe abababababababababababababababab";
const SRTP_80: &str =
    "800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc99ea179b8dbb";
const PLAIN_RTCP: &str = "81c8000bcafebabe abababababababababababababababab";
const SRTCP_80: &str =
    "81c8000bcafebabe 7128035be487b9bdbef89041f977a5a8 80000001 993e08cd54d6c1230798";

#[test]
fn rtp_is_protected_as_the_reference_vectors_say() {
    for (suite, tag_bytes) in [
        (Suite::AesCm128HmacSha1_80, 10),
        (Suite::AesCm128HmacSha1_32, 4),
    ] {
        let plain = hex(PLAIN_RTP);
        let mut buf = [0u8; 64];
        buf[..plain.len()].copy_from_slice(&plain);
        let len = Outbound::new(suite, &rfc_master())
            .protect_rtp(&mut buf, plain.len())
            .unwrap();
        let expected = hex(SRTP_80);
        assert_eq!(&buf[..len], &expected[..plain.len() + tag_bytes]);
    }
}

#[test]
fn the_reference_packet_decrypts_to_its_plaintext() {
    let mut inbound = Inbound::new(Suite::AesCm128HmacSha1_80, &inbound_key(rfc_master()));
    let mut packet = hex(SRTP_80);
    let checked = inbound.check_rtp(&packet).unwrap();
    let len = inbound.accept_rtp(&checked, &mut packet);
    assert_eq!(&packet[..len], &hex(PLAIN_RTP)[..]);
}

#[test]
fn rtcp_is_protected_and_read_back_as_the_reference_vectors_say() {
    // libsrtp's vector uses SRTCP index 1: the second packet this sender protects.
    let mut outbound = Outbound::new(Suite::AesCm128HmacSha1_80, &rfc_master());
    let plain = hex(PLAIN_RTCP);
    let mut buf = [0u8; 64];
    for _ in 0..2 {
        buf[..plain.len()].copy_from_slice(&plain);
        let len = outbound.protect_rtcp(&mut buf, plain.len()).unwrap();
        assert_eq!(len, plain.len() + 14);
    }
    assert_eq!(&buf[..plain.len() + 14], &hex(SRTCP_80)[..]);

    let mut inbound = Inbound::new(Suite::AesCm128HmacSha1_80, &inbound_key(rfc_master()));
    let mut packet = hex(SRTCP_80);
    let len = inbound.unprotect_rtcp(&mut packet).unwrap();
    assert_eq!(&packet[..len], &plain[..]);
    let mut again = hex(SRTCP_80);
    assert_eq!(inbound.unprotect_rtcp(&mut again), Err(SrtpError::Replayed));
}

/// A plain RTP packet with the given sequence number and a recognisable payload.
fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend(std::iter::repeat_n(seq as u8, 160));
    p
}

fn protect(out: &mut Outbound, plain: &[u8]) -> Vec<u8> {
    let mut buf = [0u8; 256];
    buf[..plain.len()].copy_from_slice(plain);
    let len = out.protect_rtp(&mut buf, plain.len()).unwrap();
    buf[..len].to_vec()
}

fn receive(inbound: &mut Inbound, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
    let mut packet = packet.to_vec();
    let checked = inbound.check_rtp(&packet)?;
    let len = inbound.accept_rtp(&checked, &mut packet);
    Ok(packet[..len].to_vec())
}

#[test]
fn a_stream_survives_its_sequence_numbers_wrapping_and_reordering() {
    let key = MasterKey::random();
    let suite = Suite::AesCm128HmacSha1_32;
    let mut out = Outbound::new(suite, &key);
    let mut inbound = Inbound::new(suite, &inbound_key(key));
    let seqs: Vec<u16> = (65000..=u16::MAX).chain(0..2000).collect();
    let sealed: Vec<Vec<u8>> = seqs
        .iter()
        .map(|&s| protect(&mut out, &rtp(s, 7)))
        .collect();
    // Delivered with neighbours swapped, across the wrap as well.
    let mut order: Vec<usize> = (0..sealed.len()).collect();
    for pair in order.chunks_mut(2).step_by(3) {
        pair.reverse();
    }
    for i in order {
        let plain = receive(&mut inbound, &sealed[i]).unwrap();
        assert_eq!(plain, rtp(seqs[i], 7), "packet {i}");
    }
}

#[test]
fn replays_tampering_and_wrong_keys_are_refused() {
    let key = MasterKey::random();
    let suite = Suite::AesCm128HmacSha1_80;
    let mut out = Outbound::new(suite, &key);
    let mut inbound = Inbound::new(suite, &inbound_key(key.clone()));
    let first = protect(&mut out, &rtp(10, 1));
    let second = protect(&mut out, &rtp(11, 1));
    receive(&mut inbound, &first).unwrap();
    receive(&mut inbound, &second).unwrap();
    assert_eq!(receive(&mut inbound, &first), Err(SrtpError::Replayed));

    let mut tampered = protect(&mut out, &rtp(12, 1));
    tampered[20] ^= 1;
    assert_eq!(receive(&mut inbound, &tampered), Err(SrtpError::Forged));

    let mut stranger = Outbound::new(suite, &MasterKey::random());
    let forged = protect(&mut stranger, &rtp(13, 1));
    assert_eq!(receive(&mut inbound, &forged), Err(SrtpError::Forged));
    // Neither moved the window: the genuine packet 12 still gets in.
    let genuine = protect(&mut out, &rtp(12, 1));
    assert!(receive(&mut inbound, &genuine).is_ok());

    assert_eq!(receive(&mut inbound, &[0x80; 5]), Err(SrtpError::Malformed));
    // A header that claims 15 CSRCs in a short packet.
    let mut lying = first[..40].to_vec();
    lying[0] = 0x8f;
    assert_eq!(receive(&mut inbound, &lying), Err(SrtpError::Malformed));
}

#[test]
fn a_checked_packet_changes_nothing_until_accepted() {
    let key = MasterKey::random();
    let suite = Suite::AesCm128HmacSha1_80;
    let mut out = Outbound::new(suite, &key);
    let inbound = Inbound::new(suite, &inbound_key(key));
    let packet = protect(&mut out, &rtp(5, 9));
    assert!(inbound.check_rtp(&packet).is_ok());
    assert!(inbound.check_rtp(&packet).is_ok());
}

#[test]
fn the_mki_must_name_the_key_and_the_lifetime_is_kept() {
    let key = MasterKey::random();
    let suite = Suite::AesCm128HmacSha1_80;
    let mut out = Outbound::new(suite, &key);
    let mut inbound = Inbound::new(
        suite,
        &InboundKey {
            master: key,
            mki: Some(vec![0, 0, 0, 1].into_boxed_slice()),
            lifetime: 2,
        },
    );
    let with_mki = |packet: Vec<u8>, mki: [u8; 4]| {
        let split = packet.len() - 10;
        let mut p = packet[..split].to_vec();
        p.extend_from_slice(&mki);
        p.extend_from_slice(&packet[split..]);
        p
    };
    let one = with_mki(protect(&mut out, &rtp(1, 3)), [0, 0, 0, 1]);
    assert_eq!(receive(&mut inbound, &one).unwrap(), rtp(1, 3));
    let other = with_mki(protect(&mut out, &rtp(2, 3)), [0, 0, 0, 2]);
    assert_eq!(receive(&mut inbound, &other), Err(SrtpError::UnknownKey));
    let two = with_mki(protect(&mut out, &rtp(3, 3)), [0, 0, 0, 1]);
    assert!(receive(&mut inbound, &two).is_ok());
    let three = with_mki(protect(&mut out, &rtp(4, 3)), [0, 0, 0, 1]);
    assert_eq!(receive(&mut inbound, &three), Err(SrtpError::KeyExpired));
}

#[test]
fn a_rekeyed_stream_keeps_its_rollover_counter() {
    let suite = Suite::AesCm128HmacSha1_80;
    let (old, new) = (MasterKey::random(), MasterKey::random());
    let mut out = Outbound::new(suite, &old);
    let mut inbound = Inbound::new(suite, &inbound_key(old));
    for seq in (65530..=u16::MAX).chain(0..5) {
        receive(&mut inbound, &protect(&mut out, &rtp(seq, 4))).unwrap();
    }
    inbound.rekey(suite, &inbound_key(new.clone()));
    // The sender's context under the new key continues at rollover 1.
    let mut rekeyed = Outbound::new(suite, &new);
    protect(&mut rekeyed, &rtp(u16::MAX, 4));
    let next = protect(&mut rekeyed, &rtp(5, 4));
    assert_eq!(receive(&mut inbound, &next).unwrap(), rtp(5, 4));
}

#[test]
fn the_replay_window_estimates_indexes_near_a_wrap() {
    let mut window = ReplayWindow::starting_at(0xfff0);
    assert_eq!(window.estimate(0x0002), Some(0x1_0002));
    window.accept(0x1_0002);
    assert_eq!(window.estimate(0xfff5), Some(0xfff5));
    assert!(window.fresh(0xfff5));
    assert!(!window.fresh(0xfff0));
    assert!(!window.fresh(0x1_0002 - 128));
    // Before the first rollover there is nothing to go back to.
    assert_eq!(ReplayWindow::starting_at(3).estimate(0xfff0), None);
}

#[test]
fn keys_round_trip_through_base64_and_refuse_wrong_lengths() {
    let key = MasterKey::random();
    assert_eq!(MasterKey::from_base64(&key.to_base64()), Some(key.clone()));
    assert_eq!(key.to_base64().len(), 40);
    assert_eq!(MasterKey::from_base64("c2hvcnQ="), None);
    assert_eq!(MasterKey::from_base64("not base64!"), None);
    assert_eq!(format!("{key:?}"), "MasterKey(..)");
}

#[test]
fn every_refusal_indexes_its_own_slot() {
    for (i, error) in SrtpError::ALL.into_iter().enumerate() {
        assert_eq!(error as usize, i, "{error:?}");
    }
}

//! SRTP under each policy: which offers get keys, which get plain RTP, which get 488 and why.

use super::tests::{local, sdp};
use super::*;

const PCMU: &[Codec] = &[Codec::Pcmu];
const KEY: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

fn policy(encryption: Encryption, keys_may_travel: bool) -> LocalMedia {
    LocalMedia {
        encryption,
        keys_may_travel,
        ..local()
    }
}

fn savp(crypto: &str) -> Vec<u8> {
    sdp(&format!(
        "m=audio 4000 RTP/SAVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n{crypto}"
    ))
}

fn avp(crypto: &str) -> Vec<u8> {
    sdp(&format!("m=audio 4000 RTP/AVP 0\r\n{crypto}"))
}

fn refusal(result: Result<(Negotiated, String), Rejection>) -> String {
    match result {
        Err(Rejection::NotAcceptable {
            warn_code: 399,
            text,
        }) => text,
        other => panic!("expected a 488 with a reason, got {other:?}"),
    }
}

#[test]
fn an_sdes_offer_over_tls_gets_our_own_key_on_the_first_usable_line() {
    let local = policy(Encryption::Mandatory, true);
    let offer = savp(&format!(
        "a=crypto:1 AEAD_AES_256_GCM inline:{KEY}\r\na=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{KEY}\r\n\
         a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n"
    ));
    let (n, body) = answer(&offer, PCMU, &local).unwrap();
    let srtp = n.srtp.expect("SRTP negotiated");
    assert_eq!(srtp.suite, Suite::AesCm128HmacSha1_32);
    assert_eq!(srtp.inbound.master.to_base64(), KEY);
    assert_eq!(srtp.outbound, local.key);
    assert!(body.contains("m=audio 30000 RTP/SAVP 0 101\r\n"), "{body}");
    let ours = format!(
        "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{}\r\n",
        local.key.to_base64()
    );
    assert!(body.contains(&ours), "{body}");
    assert_eq!(body.matches("a=crypto").count(), 1);
    assert_ne!(local.key.to_base64(), KEY, "never echo the caller's key");
}

#[test]
fn mandatory_refuses_plain_offers_and_keys_in_clear() {
    let mandatory = policy(Encryption::Mandatory, true);
    assert!(refusal(answer(&avp(""), PCMU, &mandatory)).contains("mandatory"));
    let over_udp = policy(Encryption::Mandatory, false);
    let keyed = savp(&format!(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n"
    ));
    assert!(refusal(answer(&keyed, PCMU, &over_udp)).contains("sdes_over_plain_sip"));
    let weakened = savp(&format!(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY} UNENCRYPTED_SRTP\r\n"
    ));
    assert!(refusal(answer(&weakened, PCMU, &mandatory)).contains("UNENCRYPTED_SRTP"));
}

#[test]
fn optional_takes_either_and_says_why_a_key_went_unused() {
    let optional_tls = policy(Encryption::Optional, true);
    let (plain, body) = answer(&avp(""), PCMU, &optional_tls).unwrap();
    assert_eq!((plain.srtp, plain.crypto_declined), (None, None));
    assert!(!body.contains("a=crypto"));

    // Best-effort SRTP (RTP/AVP with a=crypto), as baresip's `mediaenc=srtp` offers it.
    let keyed = avp(&format!(
        "a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n"
    ));
    let (n, body) = answer(&keyed, PCMU, &optional_tls).unwrap();
    assert!(n.srtp.is_some());
    assert!(
        body.contains("RTP/AVP") && body.contains("a=crypto:7 "),
        "{body}"
    );

    let optional_udp = policy(Encryption::Optional, false);
    let (n, body) = answer(&keyed, PCMU, &optional_udp).unwrap();
    assert_eq!(n.srtp, None);
    assert!(n.crypto_declined.unwrap().contains("plain SIP"));
    assert!(!body.contains("a=crypto"), "{body}");
    let keyed_savp = savp(&format!(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n"
    ));
    assert!(refusal(answer(&keyed_savp, PCMU, &optional_udp)).contains("plain SIP"));
}

#[test]
fn off_answers_plain_and_refuses_srtp_only_offers() {
    let off = policy(Encryption::Off, true);
    let keyed = avp(&format!(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n"
    ));
    let (n, body) = answer(&keyed, PCMU, &off).unwrap();
    assert_eq!(n.srtp, None);
    assert!(!body.contains("a=crypto"));
    let keyed_savp = savp(&format!(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n"
    ));
    assert!(refusal(answer(&keyed_savp, PCMU, &off)).contains("turned off"));
}

#[test]
fn our_late_offer_carries_a_key_only_where_it_may_travel() {
    let mandatory = policy(Encryption::Mandatory, true);
    let body = offer(PCMU, &mandatory).unwrap();
    assert!(body.contains("m=audio 30000 RTP/SAVP 0 101\r\n"), "{body}");
    let line = format!(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}\r\n",
        mandatory.key.to_base64()
    );
    assert!(body.contains(&line), "{body}");
    assert!(offer(PCMU, &policy(Encryption::Mandatory, false)).is_err());
    assert!(!offer(PCMU, &policy(Encryption::Optional, false))
        .unwrap()
        .contains("a=crypto"));

    let answered = savp(&format!(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n"
    ));
    let n = read_answer(&answered, PCMU, &mandatory).unwrap();
    assert_eq!(n.srtp.unwrap().inbound.master.to_base64(), KEY);
    let unkeyed = sdp("m=audio 4000 RTP/AVP 0\r\n");
    assert!(read_answer(&unkeyed, PCMU, &mandatory).is_err());
    assert_eq!(
        read_answer(&unkeyed, PCMU, &policy(Encryption::Optional, true))
            .unwrap()
            .srtp,
        None
    );
    let wrong_tag = savp(&format!(
        "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n"
    ));
    assert!(read_answer(&wrong_tag, PCMU, &mandatory).is_err());
}

#[test]
fn a_reinvite_may_rekey_the_caller_while_our_key_stays() {
    let local = policy(Encryption::Mandatory, true);
    let first = savp(&format!(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n"
    ));
    let (before, _) = answer(&first, PCMU, &local).unwrap();
    let rekeyed = MasterKey::random();
    let second = savp(&format!(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}\r\n",
        rekeyed.to_base64()
    ));
    let (after, body) = answer(&second, PCMU, &local).unwrap();
    let (before, after) = (before.srtp.unwrap(), after.srtp.unwrap());
    assert_eq!(after.inbound.master, rekeyed);
    assert_eq!(before.outbound, after.outbound);
    assert!(body.contains(&local.key.to_base64()));
}

//! IPv6: an IVR listening on [::1] takes a call from an IPv6 phone end to end (SDP `IN IP6`,
//! RTP over IPv6, BYE). An IVR on IPv4 answers a caller whose SDP names an IPv6 address it
//! cannot send to, and its media finds the caller's real IPv4 source (symmetric RTP); its
//! BYE goes to the caller's own address when the Contact names an IPv6 one.

use crate::support;

use std::time::Duration;

use support::raw::{header, status, RawPhone};
use support::{free_port, Ivr};

#[test]
fn a_call_over_ipv6_is_answered_heard_and_ended() {
    let port = free_port();
    let ivr = Ivr::start("ipv6", &[("IVR_SIP__LISTEN", &format!("[::1]:{port}"))]);
    let phone = RawPhone::dialling("::1", format!("[::1]:{port}"));
    let call = phone.call("v6-call").expect("the IPv6 call is answered");
    ivr.wait_for_line(
        &["session negotiated", "remote=Some([::1]:"],
        Duration::from_secs(1),
    );
    assert!(
        phone.hears_prompt(Duration::from_secs(3)),
        "RTP arrives over IPv6"
    );
    phone.bye(&call);
    ivr.wait_for_log("reason=\"caller-bye\"", Duration::from_secs(3));
}

#[test]
fn an_ipv4_ivr_latches_onto_a_caller_whose_sdp_says_ipv6_and_byes_its_own_address() {
    let ivr = Ivr::start("ipv4-only", &[("IVR_RTP__INACTIVITY_TIMEOUT_S", "2")]);
    let phone = RawPhone::new("127.0.0.1", &ivr);
    phone.send_invite("v6-media", Some("[fd00::2]:4000".parse().unwrap()));
    let reply = phone
        .final_response("v6-media", Duration::from_secs(3))
        .expect("an answer");
    assert_eq!(status(&reply), 200, "{reply}");
    let rtp_port = reply
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|m| m.split(' ').next()?.parse().ok())
        .expect("m=audio");
    let to = header(&reply, "To").unwrap().to_string();
    phone.ack("v6-media", &to);
    // The caller's packets come from IPv4: the IVR's audio follows them there.
    phone.speak(rtp_port, 10);
    assert!(
        phone.hears_prompt(Duration::from_secs(3)),
        "media latched onto IPv4"
    );

    // A Contact on IPv6 cannot be reached from an IPv4 socket: the BYE goes where the INVITE
    // came from.
    let mut phone = RawPhone::new("127.0.0.1", &ivr);
    phone.contact = Some("<sip:raw@[::1]:5999>".into());
    let _call = phone.call("v6-contact").expect("answered");
    // The phone sends no RTP: after the inactivity timeout the IVR hangs up.
    assert!(
        phone.await_bye(Duration::from_secs(6)).is_some(),
        "the BYE reached the caller's IPv4 address"
    );
    ivr.wait_for_line(&["BYE answered", "status=200"], Duration::from_secs(2));
}

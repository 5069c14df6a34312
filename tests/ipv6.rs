//! IPv6: an IVR listening on [::1] takes a call from an IPv6 phone end to end (SDP `IN IP6`,
//! RTP over IPv6, BYE). An IVR on IPv4 refuses media it cannot send to (488, Warning 301)
//! and sends its BYE to the caller's own address when the Contact names an IPv6 one.

mod support;

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
fn an_ipv4_ivr_refuses_ipv6_media_and_sends_its_bye_to_the_callers_address() {
    let ivr = Ivr::start("ipv4-only", &[("IVR_RTP__INACTIVITY_TIMEOUT_S", "2")]);
    let phone = RawPhone::new("127.0.0.1", &ivr);
    let v6_media = "[::1]:4000".parse().unwrap();
    phone.send_invite("v6-media", Some(v6_media));
    let reply = phone
        .final_response("v6-media", Duration::from_secs(3))
        .expect("an answer");
    assert_eq!(status(&reply), 488, "{reply}");
    assert!(
        header(&reply, "Warning").is_some_and(|w| w.starts_with("301 ")),
        "{reply}"
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

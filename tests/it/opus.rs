//! What the Opus build (`--features opus`) changes, checked in both builds: an Opus-only offer
//! is answered or refused, and linphonec gets its first-choice codec. The test command's second
//! pass runs these, with the unit tests, with the feature on.

use std::time::Duration;

use crate::sip_wire::{request, status, Wire, SDP_HEAD};
use crate::support::audio::{active_span, expected_stream, read_recording};
use crate::support::linphone::Linphone;
use crate::support::{require_tool, Ivr, TempDir};

#[test]
fn an_opus_only_offer_is_answered_exactly_when_opus_is_built_in() {
    let ivr = Ivr::start("opus-only", &[]);
    let w = Wire::new(&ivr);
    let opus_only = format!("{SDP_HEAD}m=audio 4000 RTP/AVP 96\na=rtpmap:96 opus/48000/2\n");
    let reply = w.ask(&request(
        "INVITE",
        "Content-Type: application/sdp\n",
        &opus_only,
    ));
    if cfg!(feature = "opus") {
        assert_eq!(status(&reply), "200");
        assert!(reply.unwrap().contains("a=rtpmap:96 opus/48000/2"));
    } else {
        assert_eq!(status(&reply), "488");
        assert!(reply
            .unwrap()
            .contains("Warning: 305 127.0.0.1 \"Incompatible media format\""));
    }
}

#[test]
fn linphonec_negotiates_its_first_choice_when_we_have_it_and_hears_the_prompts() {
    require_tool("linphonec", "linphone-cli");
    let ivr = Ivr::start("linphone", &[]);
    let dir = TempDir::new("linphone");
    let mut phone = Linphone::start(&dir.0, None);
    phone.say(&format!("call sip:ivr@{}", ivr.addr()));
    std::thread::sleep(Duration::from_secs(9));
    let status = phone.quit();
    assert!(status.success(), "linphonec exited with {status}");
    let codec = if cfg!(feature = "opus") {
        "codec=\"opus\""
    } else {
        "codec=\"PCMU\""
    };
    ivr.wait_for_line(&["session negotiated", codec], Duration::from_secs(1));
    ivr.wait_for_log("reason=\"caller-bye\"", Duration::from_secs(5));
    let (heard, rate) = read_recording(&dir.0.join("rec.wav"));
    let heard_span = active_span(&heard, rate);
    let expected_span = active_span(&expected_stream(&["welcome", "enter_account"]), 8000);
    let ratio = heard_span / expected_span;
    assert!(
        (0.95..=1.05).contains(&ratio),
        "heard {heard_span:.3} s, expected {expected_span:.3} s"
    );
}

//! `sip.allow` against the built binary: a caller inside the trunk's range gets its call, one
//! from another address gets 403 (or nothing with `sip.allow_silent_drop`), on the wire.

use crate::support;

use std::time::Duration;

use support::raw::{status, RawPhone};
use support::Ivr;

#[test]
fn only_the_trunks_range_may_call() {
    let ivr = Ivr::start("allow", &[("IVR_SIP__ALLOW", r#"["127.0.0.1/32"]"#)]);
    let trunk = RawPhone::new("127.0.0.1", &ivr);
    let call = trunk
        .call("allowed-call")
        .expect("the trunk's call is answered");
    trunk.bye(&call);

    let stranger = RawPhone::new("127.0.0.2", &ivr);
    let reply = stranger
        .final_response("stranger-call", Duration::from_secs(3))
        .expect("an answer");
    assert_eq!(status(&reply), 403, "{reply}");
    ivr.wait_for_line(
        &["INVITEs refused", "not_allowed", "answer=\"403\""],
        Duration::from_secs(15),
    );
}

#[test]
fn silent_drop_answers_strangers_nothing() {
    let ivr = Ivr::start(
        "allow-silent",
        &[
            ("IVR_SIP__ALLOW", r#"["127.0.0.1"]"#),
            ("IVR_SIP__ALLOW_SILENT_DROP", "true"),
        ],
    );
    let stranger = RawPhone::new("127.0.0.2", &ivr);
    assert_eq!(
        stranger.final_response("silent", Duration::from_secs(3)),
        None
    );
    let trunk = RawPhone::new("127.0.0.1", &ivr);
    assert!(
        trunk.call("allowed").is_ok(),
        "the trunk still gets through"
    );
}

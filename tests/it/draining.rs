//! Stopping the service: SIGTERM drains (new calls and OPTIONS get 503 with Retry-After, calls
//! in progress go on, then hear goodbye and get a BYE, and the process exits 0); a second signal
//! ends every call at once.

use crate::support;

use std::time::{Duration, Instant};

use support::keys::pcap_scenario;
use support::raw::{retry_after, status, RawPhone};
use support::{sipp_file, Ivr, TempDir};

fn options(phone: &RawPhone) -> String {
    phone.send_options("probe");
    phone.receive(Duration::from_secs(2)).unwrap_or_default()
}

#[test]
fn sigterm_drains_new_calls_are_refused_and_the_live_call_ends_after_the_grace() {
    let mut ivr = Ivr::start("drain", &[("IVR_SHUTDOWN__GRACE_S", "2")]);
    let caller = RawPhone::new("127.0.0.1", &ivr);
    let _call = caller.call("live").expect("the live call is answered");
    assert!(caller.hears_prompt(Duration::from_secs(3)));
    let stopped = Instant::now();
    ivr.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));

    let late = RawPhone::new("127.0.0.2", &ivr);
    let refused = late.call("late").err().unwrap_or_default();
    assert_eq!(
        status(&refused),
        503,
        "a new call while draining: {refused}"
    );
    assert_eq!(retry_after(&refused), Some(2));
    let probe = options(&late);
    assert_eq!(status(&probe), 503, "OPTIONS while draining: {probe}");
    assert!(
        caller.hears_prompt(Duration::from_millis(500)),
        "the live call goes on"
    );

    let bye = caller
        .await_bye(Duration::from_secs(10))
        .expect("the live call gets a BYE");
    let after = bye - stopped;
    assert!(
        after >= Duration::from_secs(2),
        "not before the grace is over ({after:?})"
    );
    let exit = ivr
        .wait_exit(Duration::from_secs(5))
        .expect("the IVR exits");
    assert!(exit.success(), "exit status {exit:?}");
}

#[test]
fn a_second_signal_ends_every_call_at_once() {
    let mut ivr = Ivr::start("drain-now", &[("IVR_SHUTDOWN__GRACE_S", "60")]);
    let caller = RawPhone::new("127.0.0.1", &ivr);
    caller.call("live").expect("the live call is answered");
    ivr.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    let stopped = Instant::now();
    ivr.signal("INT");
    let bye = caller
        .await_bye(Duration::from_secs(5))
        .expect("the call gets a BYE");
    assert!(
        bye - stopped < Duration::from_secs(2),
        "at once, not after the grace"
    );
    let exit = ivr
        .wait_exit(Duration::from_secs(5))
        .expect("the IVR exits");
    assert!(exit.success(), "exit status {exit:?}");
}

#[test]
fn an_idle_server_exits_at_once_on_sigterm() {
    let mut ivr = Ivr::start("drain-idle", &[]);
    ivr.signal("TERM");
    let exit = ivr
        .wait_exit(Duration::from_secs(3))
        .expect("the IVR exits");
    assert!(exit.success(), "exit status {exit:?}");
}

#[test]
fn a_sipp_call_in_progress_gets_its_bye_after_the_grace() {
    let mut ivr = Ivr::start("drain-sipp", &[("IVR_SHUTDOWN__GRACE_S", "1")]);
    let dir = TempDir::new("drain-sipp");
    // No keys: the caller stays in the conversation until the IVR hangs up.
    let scenario = pcap_scenario(&dir, "");
    let started = Instant::now();
    let call = std::thread::scope(|s| {
        let sipp = s.spawn(|| sipp_file(&ivr, &scenario, &[]));
        std::thread::sleep(Duration::from_millis(1500));
        ivr.signal("TERM");
        sipp.join().unwrap()
    });
    assert!(call.status.success(), "SIPp got its BYE and answered it");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the BYE came after the grace, not the flow's own timeouts"
    );
    let exit = ivr
        .wait_exit(Duration::from_secs(5))
        .expect("the IVR exits");
    assert!(exit.success(), "exit status {exit:?}");
}

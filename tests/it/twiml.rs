//! An application written for Twilio runs a real call: SIPp keys an account and PINs into the
//! built `ivr` (with `sip-config/examples/remote.toml`), whose remote step speaks TwiML to the
//! README's account line, built with Twilio's own helper library
//! (`sip-config/examples/apps/twilio_account_line.py`: `VoiceResponse` writes its replies,
//! `RequestValidator` checks our `X-Twilio-Signature` on every request; it also hosts a
//! recording its `<Play>` names by URL).

use crate::support;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::apps::App;
use support::keys::{is_root, pcap_scenario};
use support::{assert_sipp_file_ok, Ivr, TempDir};

const TOKEN: &str = "twilio-auth-token-0123456789";

fn twilio_installed() {
    let ok = Command::new("python3")
        .args(["-c", "import twilio"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "Twilio's helper library is missing: python3 -m pip install twilio"
    );
}

#[test]
fn a_twilio_account_line_logs_a_caller_in_with_every_request_signed_and_never_sees_the_pin() {
    assert!(
        is_root(),
        "pcap replay needs a raw socket: run the tests as root (see README)"
    );
    twilio_installed();
    let dir = TempDir::new("twiml");
    let app = App::start("twilio_account_line.py", TOKEN, &dir);
    let flow = support::project_dir().join("sip-config/examples/remote.toml");
    let ivr = Ivr::start(
        "twiml",
        &[
            ("IVR_FLOW__FILE", flow.to_str().unwrap()),
            ("IVR_ENDPOINTS__APP__URL", &app.url("/voice")),
            ("IVR_ENDPOINTS__APP__SECRET", TOKEN),
            ("IVR_ENDPOINTS__APP__DIALECT", "twiml"),
        ],
    );
    // The README's demo account 12345: a wrong PIN first, then its own (2468).
    assert_sipp_file_ok(&ivr, &pcap_scenario(&dir, "1234511112468"), &[]);
    ivr.wait_for_log("reason=\"server-bye\"", Duration::from_secs(20));
    let (fetches, requests): (Vec<Value>, Vec<Value>) = app
        .requests()
        .into_iter()
        .partition(|r| r["method"] == "GET");
    let fetched: Vec<&str> = fetches
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        fetched,
        ["/hello.wav"],
        "the recording two <Play>s name, fetched once"
    );
    let paths: Vec<&str> = requests
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/voice",
            "/account",
            "/pin",
            "/verified",
            "/pin",
            "/verified",
            "/goodbye"
        ],
        "{requests:?}"
    );
    for request in &requests {
        assert_eq!(request["valid"], true, "RequestValidator refused {request}");
        assert_eq!(request["params"]["CallStatus"], "in-progress");
        assert!(request["params"]["AccountSid"]
            .as_str()
            .unwrap()
            .starts_with("AC"));
    }
    assert_eq!(requests[1]["params"]["Digits"], "12345");
    for pin in [&requests[2], &requests[4]] {
        assert_eq!(pin["params"]["Secret"], "true", "{pin}");
        assert!(pin["params"].get("Digits").is_none(), "{pin}");
    }
    let verified: Vec<&Value> = [&requests[3], &requests[5]]
        .iter()
        .map(|r| &r["params"]["Verified"])
        .collect();
    assert_eq!(verified, ["false", "true"], "{requests:?}");
    assert_eq!(requests[5]["params"]["Account"], "***45");
    for request in &requests {
        let sent = request["params"].as_object().unwrap();
        for (name, value) in sent.iter().filter(|(name, _)| *name != "AccountSid") {
            let value = value.as_str().unwrap();
            assert!(
                !value.contains("1111") && !value.contains("2468"),
                "a PIN reached the application in {name}: {request}"
            );
        }
    }
    let leaks = ivr.lines_with_pin("2468");
    assert!(leaks.is_empty(), "the PIN is in the log: {leaks:?}");
    assert!(ivr.count("the application") == 0, "{}", ivr.log_text());
}

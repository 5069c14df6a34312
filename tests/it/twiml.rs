//! An application written for Twilio runs a real call: SIPp keys an account number into the
//! built `ivr`, whose remote step speaks TwiML to a Python app built with Twilio's own helper
//! library (`tests/apps/twiml_app.py`: `VoiceResponse` writes its replies, `RequestValidator`
//! checks our `X-Twilio-Signature` on every request; it also hosts a recording its `<Play>`
//! names by URL).

use crate::support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::keys::{is_root, pcap_scenario};
use support::process::Peer;
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
    let log = dir.0.join("requests.jsonl");
    let port = support::free_port();
    let script = support::project_dir().join("tests/apps/twiml_app.py");
    let _app = Peer::spawn(Command::new("python3").args([
        script.to_str().unwrap(),
        &port.to_string(),
        TOKEN,
        log.to_str().unwrap(),
    ]))
    .expect("python3 runs the app");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the TwiML app did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let flow = dir.0.join("twiml.toml");
    std::fs::write(
        &flow,
        "welcome = \"welcome\"\nstart = \"app\"\n[outcomes]\nno_answer = \"goodbye\"\ngoodbye = \"goodbye\"\nerror = \"sorry_error\"\n[steps.app]\nremote = \"twilio\"\n",
    )
    .unwrap();
    let url = format!("http://127.0.0.1:{port}/voice");
    let ivr = Ivr::start(
        "twiml",
        &[
            ("IVR_FLOW__FILE", flow.to_str().unwrap()),
            ("IVR_ENDPOINTS__TWILIO__URL", &url),
            ("IVR_ENDPOINTS__TWILIO__SECRET", TOKEN),
            ("IVR_ENDPOINTS__TWILIO__DIALECT", "twiml"),
        ],
    );
    // The README's demo account 12345: a wrong PIN first, then its own (2468).
    assert_sipp_file_ok(&ivr, &pcap_scenario(&dir, "1234511112468"), &[]);
    ivr.wait_for_log("reason=\"server-bye\"", Duration::from_secs(20));
    let (fetches, requests): (Vec<Value>, Vec<Value>) = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
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
    assert!(!ivr.log_text().contains("2468"), "the PIN is in the log");
    assert!(ivr.count("the application") == 0, "{}", ivr.log_text());
}

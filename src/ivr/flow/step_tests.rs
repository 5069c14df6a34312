//! Flows written in steps, run against the scripted phone of `tests` and a small API server on
//! loopback that records every request it gets: the farm line end to end, the guards, and what
//! load refuses.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::tests::{alice, converse, converse_with, load_error, prompts, read_request, strs};
use crate::ivr::script::steps::endpoint::{signature, Endpoint};

const SECRET: &str = "farm-secret-0123456789";

fn farm_flow() -> String {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sip-config/examples/farm.toml");
    std::fs::read_to_string(path).unwrap()
}

/// One request the API got: its head (request line and headers) and body.
#[derive(Debug, Clone)]
struct Got {
    head: String,
    body: String,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// An API on loopback answering each request with the next of `replies` (status, JSON, delay
/// before answering); past the list, 500.
/// What an API received, each request in turn.
type Received = Arc<Mutex<Vec<Got>>>;

/// The farm line's API.
async fn api(replies: Vec<(u16, &'static str, Duration)>) -> (HashMap<String, Endpoint>, Received) {
    api_named("farm", replies).await
}

async fn api_named(
    name: &str,
    replies: Vec<(u16, &'static str, Duration)>,
) -> (HashMap<String, Endpoint>, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    tokio::spawn(async move {
        let mut replies = replies.into_iter();
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let (status, json, delay) = replies.next().unwrap_or((500, "{}", Duration::ZERO));
            let seen = seen.clone();
            tokio::spawn(async move {
                let Some((head, body)) = read_request(&mut socket).await else {
                    return;
                };
                seen.lock().unwrap().push(Got { head, body });
                tokio::time::sleep(delay).await;
                let response = format!("HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}", json.len());
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    let endpoint = Endpoint::new(url, SECRET.as_bytes().to_vec());
    (HashMap::from([(name.to_string(), endpoint)]), got)
}

async fn call_farm(keys: &[(&str, &str)], endpoints: HashMap<String, Endpoint>) -> Vec<String> {
    let (heard, _) = converse_with(&farm_flow(), alice(), keys, (None, false), endpoints).await;
    heard
}

/// A caller reporting the death of cow 12345, confirming it, then leaving.
const DEATH_OF_12345: [(&str, &str); 4] = [
    ("farm_menu", "1"),
    ("enter_cow", "12345#"),
    ("confirm_reenter", "1"),
    ("farm_menu", "9"),
];

const COW: [&str; 5] = ["num/1", "num/2", "num/3", "num/4", "num/5"];

#[tokio::test]
async fn a_death_is_read_back_confirmed_and_posted_once_signed() {
    let (endpoints, got) = api(vec![(200, "{}", Duration::ZERO)]).await;
    let heard = call_farm(&DEATH_OF_12345, endpoints).await;
    let mut expected = vec!["farm_welcome", "farm_menu", "enter_cow", "you_entered"];
    expected.extend(COW);
    expected.extend(["confirm_reenter", "recorded", "farm_menu", "goodbye", "BYE"]);
    assert_eq!(strs(&heard), expected);
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    let request = &got[0];
    assert!(
        request.head.starts_with("POST /events HTTP/1.1"),
        "{}",
        request.head
    );
    let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"event": "death", "cow": "12345", "caller": "5551234"})
    );
    assert_eq!(
        request.header("Idempotency-Key"),
        Some("flow-test-record-1")
    );
    let sig = request.header("X-IVR-Signature").unwrap();
    let t: u64 = sig
        .strip_prefix("t=")
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        sig,
        signature(SECRET.as_bytes(), t, request.body.as_bytes())
    );
}

#[tokio::test]
async fn two_at_the_read_back_asks_again_and_a_short_id_is_retried() {
    let (endpoints, got) = api(vec![(200, "{}", Duration::ZERO)]).await;
    let keys = [
        ("farm_menu", "2"),
        ("enter_cow", "1234#"),
        ("enter_cow", "99999#"),
        ("confirm_reenter", "2"),
        ("enter_cow", "54321"),
        ("confirm_reenter", "1"),
        ("farm_menu", "9"),
    ];
    let heard = call_farm(&keys, endpoints).await;
    assert_eq!(
        heard.iter().filter(|p| *p == "try_again").count(),
        1,
        "{heard:?}"
    );
    assert_eq!(
        heard.iter().filter(|p| *p == "recorded").count(),
        1,
        "{heard:?}"
    );
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let body: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(
        (body["event"].as_str(), body["cow"].as_str()),
        (Some("birth"), Some("54321"))
    );
}

#[tokio::test]
async fn an_api_error_or_timeout_is_said_and_the_menu_comes_back() {
    for reply in [
        (500, "{}", Duration::ZERO),
        (200, "{}", Duration::from_secs(8)),
    ] {
        let (endpoints, got) = api(vec![reply]).await;
        let heard = call_farm(&DEATH_OF_12345, endpoints).await;
        let after: Vec<&str> = strs(&heard)
            .into_iter()
            .skip_while(|p| *p != "confirm_reenter")
            .collect();
        assert!(after.starts_with(&["confirm_reenter"]), "{heard:?}");
        assert!(
            after.contains(&"not_recorded") && !after.contains(&"recorded"),
            "{reply:?}: {heard:?}"
        );
        assert!(
            after.ends_with(&["farm_menu", "goodbye", "BYE"]),
            "{heard:?}"
        );
        assert_eq!(got.lock().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn a_slow_api_gets_please_wait_first_and_its_message_is_spoken() {
    let (endpoints, _) = api(vec![(
        200,
        r#"{"message": "Cow recorded."}"#,
        Duration::from_secs(3),
    )])
    .await;
    let heard = call_farm(&DEATH_OF_12345, endpoints).await;
    let after: Vec<&str> = strs(&heard)
        .into_iter()
        .skip_while(|p| *p != "confirm_reenter")
        .collect();
    assert_eq!(after[1], "please_wait", "{heard:?}");
    // The message is spoken by the speech engine (a clip, not a recorded prompt).
    assert!(
        !after.contains(&"recorded") && !after.contains(&"not_recorded"),
        "{heard:?}"
    );
    assert!(
        after.ends_with(&["farm_menu", "goodbye", "BYE"]),
        "{heard:?}"
    );
}

/// A flow with steps `a` and `b` sending the call to each other with no caller in between.
const LOOPING: &str = r#"
welcome = "welcome"
start = "a"
[outcomes]
no_answer = "goodbye"
goodbye = "goodbye"
error = "sorry_error"
[steps.a]
set = { x = "1" }
next = "b"
[steps.b]
switch = "{{x}}"
cases = { "1" = "a" }
default = "hangup"
"#;

#[tokio::test(start_paused = true)]
async fn steps_that_loop_on_their_own_end_the_call_with_the_error_prompt() {
    let (heard, _) = converse(LOOPING, alice(), &[], None).await;
    assert_eq!(strs(&heard), ["welcome", "sorry_error", "BYE"]);
}

#[test]
fn load_refuses_what_a_flow_cannot_do() {
    let prompts = prompts();
    let farm = farm_flow();
    crate::ivr::script::Script::parse(&farm, &prompts).expect("the farm flow loads");
    for (change, expect) in [
        (
            (
                r#"caller = "{{call.from}}""#,
                r#"caller = "{{caller_number}}""#,
            ),
            "{{caller_number}} is never set by any step",
        ),
        (
            ("no = \"cow\"", "no = \"cwo\""),
            "no leads to \"cwo\", which is no step, menu or \"hangup\"",
        ),
        (
            (
                "2 = [{ goto = \"birth\" }]",
                "2 = [{ play = \"payments\" }]",
            ),
            "step birth is never reached",
        ),
        (
            (
                "next = \"read_back\"\n",
                "next = \"read_back\"\nyes = \"main\"\n",
            ),
            "a collect step has no exit `yes`",
        ),
        (
            ("pattern = \"[0-9]{5}\"", "pattern = \"[0-9\""),
            "step cow: pattern",
        ),
        (
            (
                "on_fail = \"main\"\n\n[steps.read_back]",
                "on_fail = \"read_back\"\n\n[steps.read_back]",
            ),
            "{{cow}} may be read in read_back before any step sets it",
        ),
        (
            (
                r#"{ say_digits = "{{cow}}" }"#,
                r#"{ say_digits = "{{message}}" }"#,
            ),
            "{{message}} may be read in read_back before any step sets it",
        ),
        (
            (
                "[steps.thanks]\nsay",
                "[steps.thanks]\nset = { a = \"b\" }\nsay",
            ),
            "has more than one kind",
        ),
    ] {
        let changed = farm.replacen(change.0, change.1, 1);
        assert_ne!(changed, farm, "{change:?} changed nothing");
        let err = load_error(&changed, &prompts);
        assert!(err.contains(expect), "{expect:?} not in {err}");
    }
}

/// The farm line asking for a PIN too: secret, so never read back or sent unasked.
fn with_pin() -> String {
    farm_flow()
        .replacen("next = \"read_back\"", "next = \"pin\"", 1)
        .replacen(
            "[steps.read_back]",
            "[steps.pin]\ncollect = { into = \"pin\", prompt = \"enter_pin\", min_digits = 4, max_digits = 4, secret = true }\nnext = \"read_back\"\non_fail = \"main\"\n\n[steps.read_back]",
            1,
        )
        .replacen(r#"caller = "{{call.from}}" }"#, r#"caller = "{{call.from}}", pin = "{{pin}}" }"#, 1)
}

fn sending_the_pin() -> String {
    with_pin().replacen(
        "timeout_ms = 5000 }",
        "timeout_ms = 5000, send_secret = [\"pin\"] }",
        1,
    )
}

#[test]
fn a_secret_is_never_read_back_or_sent_unless_asked_for() {
    let prompts = prompts();
    let err = load_error(&with_pin(), &prompts);
    assert!(err.contains("{{pin}} is secret"), "{err}");
    // Sent where it was asked for, but read back too.
    let read_back = sending_the_pin().replacen(
        r#"{ say_digits = "{{cow}}" }"#,
        r#"{ say_digits = "{{pin}}" }"#,
        1,
    );
    assert!(load_error(&read_back, &prompts).contains("{{pin}} is secret"));
    crate::ivr::script::Script::parse(&sending_the_pin(), &prompts)
        .expect("a PIN the step asks to send");
}

#[tokio::test]
async fn a_secret_goes_where_an_http_step_asks_for_it() {
    let flow = sending_the_pin();
    let (endpoints, got) = api(vec![(200, "{}", Duration::ZERO)]).await;
    let keys = [
        ("farm_menu", "1"),
        ("enter_cow", "12345#"),
        ("enter_pin", "4826"),
        ("confirm_reenter", "1"),
        ("farm_menu", "9"),
    ];
    let (heard, _) = converse_with(&flow, alice(), &keys, (None, false), endpoints).await;
    assert!(heard.contains(&"recorded".to_string()), "{heard:?}");
    let got = got.lock().unwrap().clone();
    assert!(got[0].body.contains("\"pin\":\"4826\""), "{}", got[0].body);
}

fn example(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sip-config/examples")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

#[tokio::test]
async fn a_verified_caller_blocks_a_card_once_confirmed() {
    let (endpoints, got) = api_named("cards", vec![(200, "{}", Duration::ZERO)]).await;
    let keys = [
        ("enter_account", "12345#"),
        ("enter_pin", "2468#"),
        ("menu", "3"),
        ("block_card_confirm", "2"),
        ("menu", "3"),
        ("block_card_confirm", "1"),
        ("menu", "9"),
    ];
    let flow = example("bank_card_block.toml");
    let (heard, logins) = converse_with(&flow, alice(), &keys, (None, false), endpoints).await;
    assert_eq!(logins, [("12345".to_string(), "2468".to_string())]);
    assert_eq!(
        heard.iter().filter(|p| *p == "block_card_confirm").count(),
        2,
        "{heard:?}"
    );
    assert!(heard.contains(&"card_blocked".to_string()), "{heard:?}");
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "only the confirmed block is sent: {got:?}");
    let body: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["action"], "block");
    assert_eq!(body["account"], "12345");
    assert!(
        !got[0].body.contains("2468"),
        "the PIN went to the API: {}",
        got[0].body
    );
}

#[tokio::test]
async fn an_information_line_needs_no_login() {
    let keys = [("info_menu", "1"), ("info_menu", "9")];
    let flow = example("info_line.toml");
    let (heard, logins) = converse_with(&flow, alice(), &keys, (None, false), HashMap::new()).await;
    assert!(logins.is_empty());
    assert_eq!(
        strs(&heard)[..3],
        ["info_welcome", "info_menu", "speech"],
        "{heard:?}"
    );
    assert!(
        strs(&heard).ends_with(&["info_menu", "goodbye", "BYE"]),
        "{heard:?}"
    );
}

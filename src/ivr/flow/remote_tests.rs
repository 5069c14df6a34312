//! Remote steps against a JSON application on loopback (a few lines of tokio here) that
//! records every request: the bank login run by the app with the PIN kept in the IVR, and each
//! way an application can fail.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::tests::{alice, converse_with, read_request, strs};
use crate::ivr::script::steps::endpoint::Endpoint;

/// What the application received: (path, JSON body) per request.
type Received = Arc<Mutex<Vec<(String, Value)>>>;

/// An application on `ip` answering each request with `answer(path, body)`: (status, body).
async fn app(
    ip: &str,
    answer: impl Fn(&str, &Value) -> (u16, String) + Send + Sync + 'static,
) -> (String, Received) {
    let answer = Arc::new(answer);
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let url = format!("http://{}/app", listener.local_addr().unwrap());
    let got: Received = Arc::default();
    let seen = got.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (seen, answer) = (seen.clone(), answer.clone());
            tokio::spawn(async move {
                let Some((head, body)) = read_request(&mut socket).await else {
                    return;
                };
                let path = head.split(' ').nth(1).unwrap_or_default().to_string();
                let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let (status, reply) = answer(&path, &json);
                seen.lock().unwrap().push((path, json));
                let response = format!("HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}", reply.len());
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (url, got)
}

const REMOTE_FLOW: &str = r#"
welcome = "welcome"
start = "app"
[outcomes]
no_answer = "goodbye"
goodbye = "goodbye"
error = "sorry_error"
[steps.app]
remote = "bank"
"#;

fn endpoints(url: &str) -> HashMap<String, Endpoint> {
    let endpoint = Endpoint::new(url.into(), b"bank-app-secret-0123".to_vec());
    HashMap::from([("bank".to_string(), endpoint)])
}

/// The bank's login as an application: account, a secret PIN, the IVR's verify, the balance.
fn bank(path: &str, body: &Value) -> (u16, String) {
    let reply = match path {
        "/app" => r#"{"verbs": [{"gather": {"max_digits": 10, "say": [{"prompt": "enter_account"}], "into": "account", "action": "/account"}}]}"#.to_string(),
        "/account" => r#"{"verbs": [{"gather": {"min_digits": 4, "max_digits": 4, "say": [{"prompt": "enter_pin"}], "into": "pin", "secret": true, "action": "/pin"}}]}"#.to_string(),
        "/pin" => format!(r#"{{"verbs": [{{"verify": {{"account": "{}", "pin": "pin", "action": "/verified"}}}}]}}"#, body["vars"]["account"].as_str().unwrap_or_default()),
        "/verified" if body["verified"] == true => r#"{"verbs": [{"play": {"prompt": "balance_is"}}, {"say": {"amount": "1234.56"}}, {"hangup": {}}]}"#.to_string(),
        "/verified" => r#"{"verbs": [{"play": {"prompt": "wrong_credentials"}}, {"hangup": {}}]}"#.to_string(),
        _ => return (404, "{}".into()),
    };
    (200, reply)
}

#[tokio::test]
async fn an_application_runs_the_login_and_never_sees_the_pin() {
    let (url, got) = app("127.0.0.1", bank).await;
    let keys = [("enter_account", "12345#"), ("enter_pin", "2468#")];
    let (heard, logins) =
        converse_with(REMOTE_FLOW, alice(), &keys, (None, false), endpoints(&url)).await;
    assert_eq!(logins, [("12345".to_string(), "2468".to_string())]);
    assert_eq!(
        strs(&heard)[..4],
        ["welcome", "enter_account", "enter_pin", "balance_is"],
        "{heard:?}"
    );
    assert_eq!(heard.last().map(String::as_str), Some("BYE"));
    let got = got.lock().unwrap().clone();
    let paths: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["/app", "/account", "/pin", "/verified"]);
    assert_eq!(got[1].1["digits"], "12345");
    assert_eq!(
        got[2].1["digits"], "",
        "a secret gather's digits stay in the IVR"
    );
    assert_eq!(got[2].1["secret"], true);
    assert_eq!(got[3].1["verified"], true);
    assert_eq!(got[3].1["account"], "***45");
    let everything =
        serde_json::to_string(&got.iter().map(|(_, b)| b).collect::<Vec<_>>()).unwrap();
    assert!(
        !everything.contains("2468"),
        "the PIN reached the application: {everything}"
    );
    assert_eq!(got[0].1["event"], "call");
    assert_eq!(got[0].1["call"]["id"], "flow-test");
}

fn broken(path: &str, _: &Value) -> (u16, String) {
    match path {
        "/app" => (
            200,
            r#"{"verbs": [{"play": {"prompt": "welcome_user"}}, {"redirect": {"url": "/next"}}]}"#
                .into(),
        ),
        "/next" => (200, r#"{"verbs": [{"sing": {"song": "la"}}]}"#.into()),
        _ => (500, "{}".into()),
    }
}

#[tokio::test]
async fn an_unknown_verb_or_an_error_status_gets_the_error_prompt_and_bye() {
    let (url, got) = app("127.0.0.1", broken).await;
    let (heard, _) = converse_with(REMOTE_FLOW, alice(), &[], (None, false), endpoints(&url)).await;
    assert_eq!(
        strs(&heard),
        ["welcome", "welcome_user", "sorry_error", "BYE"]
    );
    assert_eq!(got.lock().unwrap().len(), 2);
    let (heard, _) = converse_with(
        REMOTE_FLOW,
        alice(),
        &[],
        (None, false),
        endpoints("http://127.0.0.1:9/app"),
    )
    .await;
    assert_eq!(
        strs(&heard),
        ["welcome", "sorry_error", "BYE"],
        "nobody listening"
    );
}

/// A second host, which only counts what reaches it.
fn elsewhere(_: &str, _: &Value) -> (u16, String) {
    (200, r#"{"verbs": [{"hangup": {}}]}"#.into())
}

#[tokio::test]
async fn a_redirect_to_another_host_is_refused_and_nothing_is_fetched_there() {
    let (other, other_got) = app("127.0.0.2", elsewhere).await;
    let redirect = format!(r#"{{"verbs": [{{"redirect": {{"url": "{other}"}}}}]}}"#);
    let (url, got) = app("127.0.0.1", move |_, _| (200, redirect.clone())).await;
    let (heard, _) = converse_with(REMOTE_FLOW, alice(), &[], (None, false), endpoints(&url)).await;
    assert_eq!(strs(&heard), ["welcome", "sorry_error", "BYE"]);
    // The same through the flow's on_error exit.
    let flow = REMOTE_FLOW.replace(
        "remote = \"bank\"",
        "remote = \"bank\"\non_error = \"sorry\"",
    ) + "[steps.sorry]\nsay = [{ play = \"transfer_failed\" }]\nnext = \"hangup\"\n";
    let (heard, _) = converse_with(&flow, alice(), &[], (None, false), endpoints(&url)).await;
    assert_eq!(strs(&heard), ["welcome", "transfer_failed", "BYE"]);
    assert_eq!(
        got.lock().unwrap().len(),
        2,
        "one request per call to the endpoint"
    );
    assert!(
        other_got.lock().unwrap().is_empty(),
        "the other host was asked"
    );
}

fn returning(path: &str, _: &Value) -> (u16, String) {
    match path {
        "/app" => (
            200,
            r#"{"verbs": [{"set": {"greeted": "yes"}}, {"return": "main"}]}"#.into(),
        ),
        _ => (404, "{}".into()),
    }
}

#[tokio::test]
async fn return_hands_the_call_back_to_the_flow() {
    let (url, _) = app("127.0.0.1", returning).await;
    let flow = REMOTE_FLOW.to_string()
        + "[menus.main]\nprompt = \"menu\"\ninvalid_prompt = \"invalid_option\"\n[menus.main.options]\n9 = [{ play = \"goodbye\" }, \"hangup\"]\n";
    let (heard, _) = converse_with(
        &flow,
        alice(),
        &[("menu", "9")],
        (None, false),
        endpoints(&url),
    )
    .await;
    assert_eq!(strs(&heard), ["welcome", "menu", "goodbye", "BYE"]);
}

#[tokio::test]
async fn a_failing_application_is_asked_twice_more_then_its_fallback() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let tries = Arc::new(AtomicUsize::new(0));
    let counted = tries.clone();
    let (url, got) = app("127.0.0.1", move |_, _| {
        match counted.fetch_add(1, Ordering::SeqCst) {
            0 | 1 => (503, "{}".into()),
            _ => (
                200,
                r#"{"verbs": [{"play": {"prompt": "payments"}}]}"#.into(),
            ),
        }
    })
    .await;
    let (heard, _) = converse_with(REMOTE_FLOW, alice(), &[], (None, false), endpoints(&url)).await;
    assert_eq!(
        strs(&heard),
        ["welcome", "payments", "BYE"],
        "the third try answered"
    );
    assert_eq!(got.lock().unwrap().len(), 3);

    let (fallback, fallback_got) = app("127.0.0.1", |_, _| {
        (
            200,
            r#"{"verbs": [{"play": {"prompt": "transfer_failed"}}]}"#.into(),
        )
    })
    .await;
    let mut down = endpoints("http://127.0.0.1:9/app");
    down.get_mut("bank").unwrap().fallback_url = Some(fallback);
    let (heard, _) = converse_with(REMOTE_FLOW, alice(), &[], (None, false), down).await;
    assert_eq!(strs(&heard), ["welcome", "transfer_failed", "BYE"]);
    assert_eq!(fallback_got.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_slow_application_gets_please_wait_and_a_huge_reply_is_refused() {
    let flow = REMOTE_FLOW.replace(
        "error = \"sorry_error\"",
        "error = \"sorry_error\"\nplease_wait = \"transferring\"",
    );
    let url = slow_app(std::time::Duration::from_secs(3));
    let (heard, _) = converse_with(&flow, alice(), &[], (None, false), endpoints(&url)).await;
    assert_eq!(strs(&heard), ["welcome", "transferring", "payments", "BYE"]);

    let huge = format!(
        r#"{{"verbs": [{{"say": {{"text": "{}"}}}}]}}"#,
        "a".repeat(2 << 20)
    );
    let (url, got) = app("127.0.0.1", move |_, _| (200, huge.clone())).await;
    let (heard, _) = converse_with(REMOTE_FLOW, alice(), &[], (None, false), endpoints(&url)).await;
    assert_eq!(
        strs(&heard),
        ["welcome", "sorry_error", "BYE"],
        "a 2 MiB reply is not read"
    );
    assert_eq!(
        got.lock().unwrap().len(),
        1,
        "a refused reply is not asked again"
    );
}

/// An application on its own thread that takes `delay` to answer, whatever it is asked.
fn slow_app(delay: std::time::Duration) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/app", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut socket in listener.incoming().flatten() {
            let mut buf = [0u8; 8192];
            let _ = socket.read(&mut buf);
            std::thread::sleep(delay);
            let reply = r#"{"verbs": [{"play": {"prompt": "payments"}}]}"#;
            let response = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}", reply.len());
            let _ = socket.write_all(response.as_bytes());
        }
    });
    url
}

#[tokio::test]
async fn an_endpoint_trusted_with_secrets_receives_the_digits() {
    let (url, got) = app("127.0.0.1", bank).await;
    let mut trusted = endpoints(&url);
    // The settings allow this only for an https url (config::endpoints::may_receive_secrets).
    trusted.get_mut("bank").unwrap().receive_secrets = true;
    let keys = [("enter_account", "12345#"), ("enter_pin", "2468#")];
    converse_with(REMOTE_FLOW, alice(), &keys, (None, false), trusted).await;
    let got = got.lock().unwrap().clone();
    assert_eq!(got[2].0, "/pin");
    assert_eq!(got[2].1["digits"], "2468");
}

fn dialling(path: &str, _: &Value) -> (u16, String) {
    match path {
        "/app" => (200, r#"{"verbs": [{"transfer": {"to": "sip:busy@pbx.example", "action": "/dialled"}}, {"play": {"prompt": "payments"}}]}"#.into()),
        "/dialled" => (200, r#"{"verbs": [{"play": {"prompt": "transfer_failed"}}]}"#.into()),
        _ => (404, "{}".into()),
    }
}

#[tokio::test]
async fn a_failed_transfer_is_reported_to_its_action_whose_reply_runs_next() {
    let (url, got) = app("127.0.0.1", dialling).await;
    let (heard, _) = converse_with(REMOTE_FLOW, alice(), &[], (None, false), endpoints(&url)).await;
    assert_eq!(
        strs(&heard),
        [
            "welcome",
            "TRANSFER sip:busy@pbx.example",
            "transfer_failed",
            "BYE"
        ]
    );
    let got = got.lock().unwrap().clone();
    assert_eq!(got[1].0, "/dialled");
    assert_eq!(
        (got[1].1["status"].as_str(), got[1].1["sip_status"].as_u64()),
        (Some("busy"), Some(486))
    );
}

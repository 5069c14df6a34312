//! The conversation driven by a scripted phone: keys are pressed when given prompts start,
//! prompts take their real length on tokio's paused clock, and the transcript of what the
//! caller heard (plus "BYE") is compared with what the seed's script must do.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::mpsc;

use super::*;
use crate::directory::{Directory, User, Verification, VerifyFuture};
use crate::ivr::call::{Call, CallRequest, TransferMode};
use crate::media::codec::Codec;
use crate::media::dtmf::DigitSource;
use crate::media::prompt::PromptLibrary;
use crate::media::speech::installed_espeak;
use crate::media::stream::{MediaCommand, MediaEvent};
use crate::sip::refer::TransferOutcome;

pub(super) fn prompts() -> Arc<PromptLibrary> {
    crate::testing::shipped_prompts()
}

fn shipped_flow(prompts: &PromptLibrary) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sip-config/flow.toml");
    let text = std::fs::read_to_string(path).unwrap();
    Script::parse(&text, prompts).expect("the shipped flow is valid");
    text
}

/// A directory that answers from a fixed table and counts its calls.
struct Scripted {
    answer: Verification,
    calls: Mutex<Vec<(String, String)>>,
}

impl Directory for Scripted {
    fn verify<'a>(&'a self, account: &'a str, pin: &'a str, _caller: &'a str) -> VerifyFuture<'a> {
        self.calls
            .lock()
            .unwrap()
            .push((account.into(), pin.into()));
        let answer = self.answer.clone();
        Box::pin(async move { answer })
    }
}

pub(super) fn alice() -> Verification {
    Verification::Verified(User {
        user_id: "local|12345".into(),
        greeting: Some("greetings/12345".into()),
        balance: Some("1234.56".parse().unwrap()),
        greeting_text: None,
    })
}

/// espeak-ng, the real engine.
fn speech() -> Option<Arc<SpeechCache>> {
    let engine = Arc::new(installed_espeak());
    Some(Arc::new(SpeechCache::new(engine, vec![Codec::Pcmu], 10)))
}

/// A caller whose directory entry has a greeting text and no recorded greeting.
fn carol(greeting_text: Option<&str>) -> Verification {
    Verification::Verified(User {
        user_id: "auth0|carol".into(),
        greeting: Some("greetings/55555".into()),
        balance: None,
        greeting_text: greeting_text.map(String::from),
    })
}

/// Runs the flow against a phone that presses `keys` when the named prompt starts (in order),
/// and hangs up itself when `hang_up_on` starts. Returns what was heard, then "BYE" if the IVR
/// hung up, and the directory's calls.
pub(super) async fn converse(
    flow_text: &str,
    answer: Verification,
    keys: &[(&str, &str)],
    hang_up_on: Option<&str>,
) -> (Vec<String>, Vec<(String, String)>) {
    converse_at(flow_text, answer, keys, hang_up_on, true).await
}

/// `prompt_time`: prompts take their length (on a paused clock), or no time at all (real clock).
async fn converse_at(
    flow_text: &str,
    answer: Verification,
    keys: &[(&str, &str)],
    hang_up_on: Option<&str>,
    prompt_time: bool,
) -> (Vec<String>, Vec<(String, String)>) {
    let endpoints = std::collections::HashMap::new();
    converse_with(
        flow_text,
        answer,
        keys,
        (hang_up_on, prompt_time),
        endpoints,
    )
    .await
}

/// As `converse_at`, with the APIs http steps call.
pub(super) async fn converse_with(
    flow_text: &str,
    answer: Verification,
    keys: &[(&str, &str)],
    (hang_up_on, prompt_time): (Option<&str>, bool),
    endpoints: std::collections::HashMap<String, Endpoint>,
) -> (Vec<String>, Vec<(String, String)>) {
    let length = |p: &crate::media::prompt::Prompt| {
        Duration::from_millis(if prompt_time { p.duration_ms() } else { 0 })
    };
    let prompts = prompts();
    let script = Script::parse(flow_text, &prompts).unwrap();
    let directory = Arc::new(Scripted {
        answer,
        calls: Mutex::new(Vec::new()),
    });
    let env = Arc::new(FlowEnv {
        script,
        name: "flow-test.toml".into(),
        directory: directory.clone(),
        http: crate::http::client().unwrap(),
        speech: speech(),
        speech_wait: Duration::from_secs(5),
        endpoints,
        clips: Arc::new(crate::ivr::app::clips::ClipCache::new(vec![Codec::Pcmu])),
        status: Vec::new(),
    });
    let (media, mut commands) = mpsc::unbounded_channel();
    let (events_tx, events) = mpsc::unbounded_channel();
    let (requests, mut hangups) = mpsc::unbounded_channel();
    let (transfers, transfers_rx) = mpsc::unbounded_channel();
    let call = Call::new(
        "flow-test".into(),
        1,
        media,
        events,
        requests,
        transfers_rx,
        prompts.clone(),
    );
    let (_never_closing, closing) = tokio::sync::watch::channel(false);
    let report = Arc::default();
    let flow = tokio::spawn(run(
        call,
        env,
        (String::from("5551234").into(), None),
        closing,
        report,
    ));
    let mut keys: VecDeque<(String, String)> = keys
        .iter()
        .map(|(p, k)| (p.to_string(), k.to_string()))
        .collect();
    let mut heard = Vec::new();
    let mut events_tx = Some(events_tx);
    loop {
        tokio::select! {
            command = commands.recv() => {
                let Some(MediaCommand::Play { prompt, id, interruptible }) = command else {
                    if command.is_none() {
                        // The flow ended: collect a BYE it asked for on its way out.
                        while hangups.try_recv().is_ok() {
                            heard.push("BYE".into());
                        }
                        break;
                    }
                    continue;
                };
                heard.push(prompt.name.clone());
                let Some(events) = &events_tx else { continue };
                if hang_up_on == Some(prompt.name.as_str()) {
                    events_tx = None; // the caller's BYE: the call's channels close
                    continue;
                }
                if keys.front().is_some_and(|(p, _)| *p == prompt.name) {
                    let (_, pressed) = keys.pop_front().unwrap();
                    tokio::time::sleep(length(&prompt).min(Duration::from_millis(300))).await;
                    for digit in pressed.chars() {
                        events.send(MediaEvent::Digit { digit, source: DigitSource::Rfc4733 }).unwrap();
                    }
                    let done = if interruptible { MediaEvent::PlaybackStopped { id } } else {
                        tokio::time::sleep(length(&prompt)).await;
                        MediaEvent::PlaybackDone { id }
                    };
                    events.send(done).unwrap();
                } else {
                    tokio::time::sleep(length(&prompt)).await;
                    events.send(MediaEvent::PlaybackDone { id }).unwrap();
                }
            }
            Some((_, request)) = hangups.recv() => match request {
                CallRequest::Hangup => {
                    heard.push("BYE".into());
                    events_tx = None;
                }
                // A target with "busy" in it refuses the caller; any other takes the call.
                // A bridged target answers, talks, then hangs up: the call is gone.
                CallRequest::Transfer(request) => {
                    let target = &request.target;
                    let outcome = if target.contains("busy") {
                        TransferOutcome::Failed { status: 486 }
                    } else {
                        TransferOutcome::Succeeded
                    };
                    let bridged = request.mode == TransferMode::Bridge;
                    let word = if bridged { "BRIDGE" } else { "TRANSFER" };
                    heard.push(format!("{word} {target}"));
                    transfers.send(outcome).unwrap();
                    if bridged && !target.contains("busy") {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        heard.push("TARGET BYE".into());
                        events_tx = None;
                    }
                }
            },
            _ = tokio::time::sleep(Duration::from_secs(3600)) => panic!("the flow hung: {heard:?}"),
        }
        if events_tx.is_none() && flow.is_finished() {
            break;
        }
    }
    flow.await.unwrap();
    assert!(
        keys.is_empty(),
        "keys never used: {keys:?}; heard {heard:?}"
    );
    let calls = directory.calls.lock().unwrap().clone();
    (heard, calls)
}

pub(super) fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[tokio::test(start_paused = true)]
async fn login_greeting_balance_payments_invalid_key_and_exit() {
    let flow = shipped_flow(&prompts());
    let keys = [
        ("enter_account", "12345#"),
        ("enter_pin", "2468#"),
        ("menu", "1"),
        ("menu", "2"),
        ("menu", "5"),
        ("menu", "9"),
    ];
    let (heard, calls) = converse(&flow, alice(), &keys, None).await;
    assert_eq!(calls, [("12345".to_string(), "2468".to_string())]);
    let balance = [
        "balance_is",
        "num/1",
        "num/thousand",
        "num/2",
        "num/hundred",
        "num/30",
        "num/4",
        "num/dollars",
        "num/and",
        "num/50",
        "num/6",
        "num/cents",
    ];
    let mut expected = vec![
        "welcome",
        "enter_account",
        "enter_pin",
        "welcome_user",
        "greetings/12345",
        "menu",
    ];
    expected.extend(balance);
    expected.extend([
        "menu",
        "payments",
        "menu",
        "invalid_option",
        "menu",
        "goodbye",
        "BYE",
    ]);
    assert_eq!(strs(&heard), expected);
}

#[tokio::test(start_paused = true)]
async fn wrong_pin_is_told_and_hung_up() {
    let flow = shipped_flow(&prompts());
    let keys = [("enter_account", "12345#"), ("enter_pin", "1111#")];
    let (heard, _) = converse(&flow, Verification::WrongCredentials, &keys, None).await;
    assert_eq!(
        strs(&heard),
        [
            "welcome",
            "enter_account",
            "enter_pin",
            "wrong_credentials",
            "BYE"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn an_outage_is_never_called_a_wrong_pin() {
    let flow = shipped_flow(&prompts());
    let keys = [("enter_account", "12345#"), ("enter_pin", "2468#")];
    let (heard, _) = converse(
        &flow,
        Verification::Unavailable("auth0 503".into()),
        &keys,
        None,
    )
    .await;
    assert_eq!(
        strs(&heard),
        [
            "welcome",
            "enter_account",
            "enter_pin",
            "unavailable",
            "BYE"
        ]
    );
    let (heard, _) = converse(&flow, Verification::Locked, &keys, None).await;
    assert_eq!(
        strs(&heard),
        ["welcome", "enter_account", "enter_pin", "locked", "BYE"]
    );
}

#[tokio::test(start_paused = true)]
async fn bad_answers_are_retried_with_please_try_again() {
    let flow = shipped_flow(&prompts());
    // Account: silence (timeout), then correct. PIN: five digits (too many), three (too few), right.
    let keys = [
        ("enter_account", "12345#"),
        ("enter_pin", "24680#"),
        ("enter_pin", "246#"),
        ("enter_pin", "2468#"),
        ("menu", "9"),
    ];
    let (heard, calls) = converse(&flow, alice(), &keys, None).await;
    assert_eq!(calls.len(), 1, "only the valid PIN reaches the directory");
    assert_eq!(
        strs(&heard)[..9],
        [
            "welcome",
            "enter_account",
            "enter_pin",
            "try_again",
            "enter_pin",
            "try_again",
            "enter_pin",
            "welcome_user",
            "greetings/12345"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn silence_everywhere_ends_with_goodbye_after_the_attempts() {
    let flow = shipped_flow(&prompts());
    let (heard, calls) = converse(&flow, alice(), &[], None).await;
    assert!(calls.is_empty());
    assert_eq!(
        strs(&heard),
        [
            "welcome",
            "enter_account",
            "try_again",
            "enter_account",
            "try_again",
            "enter_account",
            "goodbye",
            "BYE"
        ]
    );
    let keys = [("enter_account", "12345#"), ("enter_pin", "2468#")];
    let (heard, _) = converse(&flow, alice(), &keys, None).await;
    assert_eq!(
        strs(&heard)[5..],
        ["menu", "menu", "menu", "goodbye", "BYE"],
        "a silent menu is asked three times"
    );
}

#[tokio::test(start_paused = true)]
async fn hanging_up_mid_prompt_stops_the_flow_at_once() {
    let flow = shipped_flow(&prompts());
    let keys = [("enter_account", "12345#")];
    let (heard, calls) = converse(&flow, alice(), &keys, Some("enter_pin")).await;
    assert_eq!(
        strs(&heard),
        ["welcome", "enter_account", "enter_pin"],
        "nothing after the hang-up, no BYE from us"
    );
    assert!(calls.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_call_past_its_maximum_length_is_said_goodbye_and_hung_up() {
    let flow = shipped_flow(&prompts()).replace("max_call_seconds = 900", "max_call_seconds = 60");
    let mut keys = vec![("enter_account", "12345#"), ("enter_pin", "2468#")];
    keys.extend(std::iter::repeat_n(("menu", "2"), 12));
    let started = tokio::time::Instant::now();
    let (heard, _) = converse(&flow, alice(), &keys[..14.min(keys.len())], None).await;
    assert_eq!(strs(&heard[heard.len() - 2..]), ["goodbye", "BYE"]);
    assert!(heard.contains(&"payments".to_string()));
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(60) && elapsed < Duration::from_secs(70),
        "{elapsed:?}"
    );
}

/// Why a flow does not load.
pub(super) fn load_error(text: &str, prompts: &PromptLibrary) -> String {
    Script::parse(text, prompts).unwrap_err().to_string()
}

#[test]
fn flow_errors_name_their_line() {
    let prompts = prompts();
    let flow = shipped_flow(&prompts);
    let bad = flow.replace(
        "2 = [{ play = \"payments\" }]",
        "2 = [{ play = \"no_such_prompt\" }, { goto = \"nowhere\" }]",
    );
    let line = bad
        .lines()
        .position(|l| l.contains("no_such_prompt"))
        .unwrap()
        + 1;
    let err = load_error(&bad, &prompts);
    assert!(
        err.contains(&format!("line {line}: prompt \"no_such_prompt\"")),
        "{err}"
    );
    assert!(err.contains("no_such_prompt.wav is missing"), "{err}");
    assert!(
        err.contains(&format!("line {line}: no menu or step named \"nowhere\"")),
        "{err}"
    );
    let syntax = flow.replace("attempts = 3\nretry", "attempts = three\nretry");
    let err = load_error(&syntax, &prompts);
    assert!(err.contains("line"), "{err}");
}

/// A one-shot web service on loopback: answers `reply` to the first POST and hands back its body.
async fn webhook_server(reply: &str) -> (String, tokio::task::JoinHandle<String>) {
    webhook_server_raw(format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
        reply.len()
    ))
    .await
}

/// One HTTP request read off `socket`: its head and its body (by Content-Length); `None` when
/// the client leaves first.
pub(super) async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<(String, String)> {
    use tokio::io::AsyncReadExt;
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await.ok().filter(|n| *n > 0)?;
        request.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&request).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= length {
                return Some((head.to_string(), body.to_string()));
            }
        }
    }
}

/// As `webhook_server`, answering `response` byte for byte.
async fn webhook_server_raw(response: String) -> (String, tokio::task::JoinHandle<String>) {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ivr", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let (_, body) = read_request(&mut socket).await.unwrap();
        // The client may leave before reading all of it (a reply over its cap).
        let _ = socket.write_all(response.as_bytes()).await;
        body
    });
    (url, task)
}

fn flow_with_option_3(url: &str) -> String {
    shipped_flow(&prompts()).replace(
        "9 = [{ play = \"goodbye\" }, \"hangup\"]",
        &format!("9 = [{{ play = \"goodbye\" }}, \"hangup\"]\n3 = [{{ webhook = {{ url = \"{url}\", timeout_ms = 1000 }} }}]"),
    )
}

#[tokio::test]
async fn a_webhook_option_posts_the_call_and_says_what_it_answers() {
    let (url, server) =
        webhook_server(r#"{"say":[{"prompt":"payments"},{"number":42},{"amount":"1.05"}]}"#).await;
    let keys = [
        ("enter_account", "12345#"),
        ("enter_pin", "2468#"),
        ("menu", "3"),
        ("menu", "9"),
    ];
    let (heard, _) = converse_at(&flow_with_option_3(&url), alice(), &keys, None, false).await;
    let posted: serde_json::Value = serde_json::from_str(&server.await.unwrap()).unwrap();
    assert_eq!(posted["call_id"], "flow-test");
    assert_eq!(posted["caller"], "5551234");
    assert_eq!(posted["account"], "12345");
    assert_eq!(posted["option"], "3");
    let after_menu: Vec<&str> = strs(&heard)
        .into_iter()
        .skip_while(|p| *p != "menu")
        .skip(1)
        .take(9)
        .collect();
    assert_eq!(
        after_menu,
        [
            "payments",
            "num/40",
            "num/2",
            "num/1",
            "num/dollar",
            "num/and",
            "num/5",
            "num/cents",
            "menu"
        ]
    );
}

#[tokio::test]
async fn a_failing_webhook_gets_a_spoken_apology() {
    // A port nobody listens on: the connection is refused.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let keys = [
        ("enter_account", "12345#"),
        ("enter_pin", "2468#"),
        ("menu", "3"),
        ("menu", "9"),
    ];
    let flow = flow_with_option_3(&format!("http://{dead}/ivr"));
    let (heard, _) = converse_at(&flow, alice(), &keys, None, false).await;
    let after_menu: Vec<&str> = strs(&heard)
        .into_iter()
        .skip_while(|p| *p != "menu")
        .skip(1)
        .take(2)
        .collect();
    assert_eq!(after_menu, ["sorry_error", "menu"]);
    // And a service that answers garbage.
    let (url, server) = webhook_server("not json").await;
    let (heard, _) = converse_at(&flow_with_option_3(&url), alice(), &keys, None, false).await;
    server.await.unwrap();
    assert!(heard.contains(&"sorry_error".to_string()), "{heard:?}");
}

#[tokio::test]
async fn a_webhook_redirect_is_not_followed_and_an_oversized_reply_is_not_read() {
    let keys = [
        ("enter_account", "12345#"),
        ("enter_pin", "2468#"),
        ("menu", "3"),
        ("menu", "9"),
    ];
    // Where a 307 points: following it would re-POST the call's details there.
    let (elsewhere, never_asked) = webhook_server(r#"{"say":[{"prompt":"payments"}]}"#).await;
    let (url, server) = webhook_server_raw(format!(
        "HTTP/1.1 307 Temporary Redirect\r\nLocation: {elsewhere}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    ))
    .await;
    let (heard, _) = converse_at(&flow_with_option_3(&url), alice(), &keys, None, false).await;
    server.await.unwrap();
    assert!(heard.contains(&"sorry_error".to_string()), "{heard:?}");
    assert!(
        !heard.contains(&"payments".to_string()),
        "the redirect was followed"
    );
    assert!(!never_asked.is_finished());
    never_asked.abort();
    // 100 KB of things to say: refused, not held.
    let huge = format!(
        r#"{{"say":[{}]}}"#,
        vec![r#"{"prompt":"payments"}"#; 5000].join(",")
    );
    let (url, server) = webhook_server(&huge).await;
    let (heard, _) = converse_at(&flow_with_option_3(&url), alice(), &keys, None, false).await;
    server.await.unwrap();
    assert!(heard.contains(&"sorry_error".to_string()), "{heard:?}");
    assert!(!heard.contains(&"payments".to_string()));
}

#[test]
fn a_webhook_over_plain_http_to_another_machine_is_refused_at_load() {
    let error = Script::parse(
        &flow_with_option_3("http://api.example.com/ivr"),
        &prompts(),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("webhook url must be https://"), "{error}");
}

#[tokio::test]
async fn a_greeting_text_is_spoken_after_welcome_when_no_recording_exists() {
    let flow = shipped_flow(&prompts());
    let keys = [
        ("enter_account", "55555#"),
        ("enter_pin", "2468#"),
        ("menu", "9"),
    ];
    let (heard, _) = converse_at(&flow, carol(Some("Carol Example")), &keys, None, false).await;
    assert_eq!(
        strs(&heard),
        [
            "welcome",
            "enter_account",
            "enter_pin",
            "welcome_user",
            "speech",
            "menu",
            "goodbye",
            "BYE"
        ]
    );
    // No greeting text: straight from "Welcome" to the menu.
    let (heard, _) = converse_at(&flow, carol(None), &keys, None, false).await;
    assert_eq!(
        strs(&heard),
        [
            "welcome",
            "enter_account",
            "enter_pin",
            "welcome_user",
            "menu",
            "goodbye",
            "BYE"
        ]
    );
}

#[tokio::test]
async fn say_text_in_the_flow_and_text_from_a_webhook_are_spoken() {
    let (url, _server) =
        webhook_server(r#"{"say":[{"text":"Your balance is ready"},{"prompt":"payments"}]}"#).await;
    let flow = flow_with_option_3(&url).replace(
        "9 = [{ play = \"goodbye\" }, \"hangup\"]",
        "9 = [{ play = \"goodbye\" }, \"hangup\"]\n4 = [{ say_text = \"Thank you for calling\" }]",
    );
    let keys = [
        ("enter_account", "12345#"),
        ("enter_pin", "2468#"),
        ("menu", "3"),
        ("menu", "4"),
        ("menu", "9"),
    ];
    let (heard, _) = converse_at(&flow, alice(), &keys, None, false).await;
    let after_login: Vec<&str> = strs(&heard).into_iter().skip(5).collect();
    assert_eq!(
        after_login,
        ["menu", "speech", "payments", "menu", "speech", "menu", "goodbye", "BYE"]
    );
}

const LOGIN: [(&str, &str); 2] = [("enter_account", "12345#"), ("enter_pin", "2468#")];
const AFTER_LOGIN: [&str; 6] = [
    "welcome",
    "enter_account",
    "enter_pin",
    "welcome_user",
    "greetings/12345",
    "menu",
];

#[tokio::test(start_paused = true)]
async fn zero_transfers_to_an_operator_and_leaves_the_call() {
    let flow = shipped_flow(&prompts());
    let keys = [LOGIN[0], LOGIN[1], ("menu", "0")];
    let (heard, _) = converse(&flow, alice(), &keys, None).await;
    let mut expected = AFTER_LOGIN.to_vec();
    expected.extend(["transferring", "TRANSFER sip:agents@pbx.example", "BYE"]);
    assert_eq!(strs(&heard), expected);
}

#[tokio::test(start_paused = true)]
async fn a_bridged_transfer_holds_the_call_until_a_side_hangs_up() {
    let flow = shipped_flow(&prompts()).replace("mode = \"refer\"", "mode = \"bridge\"");
    let keys = [LOGIN[0], LOGIN[1], ("menu", "0")];
    let (heard, _) = converse(&flow, alice(), &keys, None).await;
    let mut expected = AFTER_LOGIN.to_vec();
    // No BYE of the flow's own, and no goodbye: the target's hang-up ended the call.
    expected.extend([
        "transferring",
        "BRIDGE sip:agents@pbx.example",
        "TARGET BYE",
    ]);
    assert_eq!(strs(&heard), expected);
}

#[tokio::test(start_paused = true)]
async fn a_failed_transfer_says_so_and_returns_to_the_menu() {
    let flow = shipped_flow(&prompts()).replace("sip:agents@pbx.example", "sip:busy@pbx.example");
    let keys = [LOGIN[0], LOGIN[1], ("menu", "0"), ("menu", "9")];
    let (heard, _) = converse(&flow, alice(), &keys, None).await;
    let mut expected = AFTER_LOGIN.to_vec();
    expected.extend([
        "transferring",
        "TRANSFER sip:busy@pbx.example",
        "transfer_failed",
        "menu",
        "goodbye",
        "BYE",
    ]);
    assert_eq!(strs(&heard), expected);
}

#[test]
fn transfers_are_checked_when_the_flow_loads() {
    let prompts = prompts();
    let flow = shipped_flow(&prompts);
    let line_of =
        |text: &str, needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let injected = flow.replace("sip:agents@pbx.example", "sip:a@b>\\r\\nX: 1");
    let err = load_error(&injected, &prompts);
    let line = line_of(&injected, "0 = [");
    assert!(
        err.contains(&format!("line {line}: transfer to must be")),
        "{err}"
    );
    let bridge = flow.replace("mode = \"refer\"", "mode = \"bridge\"");
    let tel = bridge.replace("sip:agents@pbx.example", "tel:+15551234");
    let err = load_error(&tel, &prompts);
    assert!(err.contains("calls sip: targets only"), "{err}");
    let forever = bridge.replace("mode = \"bridge\"", "mode = \"bridge\", timeout_s = 0");
    let err = load_error(&forever, &prompts);
    assert!(err.contains("timeout_s must be 1 to 600"), "{err}");
    let again = flow.replace(
        "on_transfer_failed = [{ play = \"transfer_failed\" }, { goto = \"main\" }]",
        "on_transfer_failed = [{ transfer = { to = \"sip:x@y\" } }]",
    );
    let err = load_error(&again, &prompts);
    assert!(
        err.contains("on_transfer_failed cannot transfer again"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn eight_switches_to_spanish_prompts_and_spanish_numbers() {
    let flow = shipped_flow(&prompts());
    let keys = [
        LOGIN[0],
        LOGIN[1],
        ("menu", "8"),
        ("es/menu", "1"),
        ("es/menu", "9"),
    ];
    let (heard, _) = converse(&flow, alice(), &keys, None).await;
    let mut expected = AFTER_LOGIN.to_vec();
    // 1234.56: mil doscientos treinta y cuatro dólares con cincuenta y seis centavos.
    expected.extend([
        "es/menu",
        "es/balance_is",
        "es/num/mil",
        "es/num/200",
        "es/num/30",
        "es/num/y",
        "es/num/4",
        "es/num/dolares",
        "es/num/con",
        "es/num/50",
        "es/num/y",
        "es/num/6",
        "es/num/centavos",
        "es/menu",
        "es/goodbye",
        "BYE",
    ]);
    assert_eq!(strs(&heard), expected);
}

#[tokio::test(start_paused = true)]
async fn a_flow_may_start_in_spanish_and_missing_translations_play_in_the_base_language() {
    let flow = shipped_flow(&prompts()).replace(
        "max_call_seconds = 900",
        "max_call_seconds = 900\nlanguage = \"es\"",
    );
    let (heard, _) = converse(&flow, alice(), &[], Some("es/enter_account")).await;
    assert_eq!(strs(&heard), ["es/welcome", "es/enter_account"]);
    let missing = flow.replace("welcome = \"welcome\"", "welcome = \"greetings/12345\"");
    let (heard, _) = converse(&missing, alice(), &[], Some("es/enter_account")).await;
    assert_eq!(
        strs(&heard),
        ["greetings/12345", "es/enter_account"],
        "no es/greetings/12345"
    );
}

#[test]
fn a_language_without_prompts_is_refused_at_load() {
    let prompts = prompts();
    let flow = shipped_flow(&prompts).replace("{ language = \"es\" }", "{ language = \"fr\" }");
    let err = load_error(&flow, &prompts);
    assert!(err.contains("language \"fr\""), "{err}");
    assert!(err.contains("prompts/fr is missing"), "{err}");
}

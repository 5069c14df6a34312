//! The JSON dialect's verbs: what a web application answers with, read strictly (an unknown
//! verb or field is a refusal with its name, never skipped in silence) and capped.

use serde::Deserialize;

/// The most verbs one reply may hold.
pub const MAX_VERBS: usize = 100;
/// The longest pause a verb may ask for.
pub const MAX_PAUSE_S: u64 = 60;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    pub verbs: Vec<serde_json::Value>,
}

/// One thing to say: exactly one of its fields.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Say {
    pub text: Option<String>,
    pub prompt: Option<String>,
    pub number: Option<u64>,
    pub digits: Option<String>,
    pub amount: Option<String>,
    /// A recording at a URL (in a gather's question: TwiML's nested `<Play>`).
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gather {
    #[serde(default = "one")]
    pub min_digits: usize,
    pub max_digits: usize,
    #[serde(default = "pound")]
    pub finish_on_key: Option<String>,
    #[serde(default = "ten")]
    pub timeout_s: u64,
    #[serde(default = "five")]
    pub inter_digit_timeout_s: u64,
    #[serde(default = "one_attempt")]
    pub attempts: u32,
    /// Played as the question (a key stops it).
    #[serde(default)]
    pub say: Vec<Say>,
    /// The variable the digits go into (needed for a secret gather, which `verify` reads).
    pub into: Option<String>,
    #[serde(default)]
    pub secret: bool,
    /// Where the result is posted; none: the next verb runs.
    pub action: Option<String>,
    /// Whether a gather with no digits posts too (TwiML's `actionOnEmptyResult`; always in
    /// JSON): when not, the next verb runs.
    #[serde(skip_deserializing, default = "always")]
    pub post_empty: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    pub account: String,
    /// The variable a secret gather filled.
    pub pin: String,
    pub action: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    pub to: String,
    #[serde(default)]
    pub mode: Option<String>,
    /// Where a transfer that did not happen is reported (`busy`, `no-answer`, `failed`); the
    /// reply runs next. None: the next verb runs.
    pub action: Option<String>,
    /// How long the target may ring, in seconds.
    pub timeout_s: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verb {
    Say(Say),
    Play(String),
    /// A recording at a URL (fetched once and cached).
    PlayUrl(String),
    Pause(u64),
    Gather(Gather),
    Set(Vec<(String, String)>),
    Redirect(String),
    Hangup,
    Transfer(Transfer),
    Language(String),
    Verify(Verify),
    /// Back to the flow file: a step or a menu.
    Return(String),
    /// Refuse the call before it is answered: busy (486) or rejected (603). Only as the first
    /// verb of the first reply; later it is a hang-up.
    Reject {
        busy: bool,
    },
}

fn always() -> bool {
    true
}
fn one() -> usize {
    1
}
fn one_attempt() -> u32 {
    1
}
fn five() -> u64 {
    5
}
fn ten() -> u64 {
    10
}
fn pound() -> Option<String> {
    Some("#".into())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Named {
    prompt: Option<String>,
    url: Option<String>,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Seconds {
    seconds: u64,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Url {
    url: String,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Code {
    code: String,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Refusal {
    reason: Option<String>,
}

/// Reads a reply's verbs: each is valid, or the whole reply is refused with the first reason
/// (a half-run reply would leave the caller somewhere the app did not mean).
pub fn parse(body: &[u8]) -> Result<Vec<Verb>, String> {
    let value = serde_json::from_slice(body).map_err(|e| format!("reply unreadable: {e}"))?;
    parse_value(value)
}

/// As `parse`, from JSON already read.
pub fn parse_value(value: serde_json::Value) -> Result<Vec<Verb>, String> {
    let reply: Reply =
        serde_json::from_value(value).map_err(|e| format!("reply unreadable: {e}"))?;
    if reply.verbs.len() > MAX_VERBS {
        return Err(format!("{} verbs (at most {MAX_VERBS})", reply.verbs.len()));
    }
    reply
        .verbs
        .into_iter()
        .enumerate()
        .map(|(i, v)| verb(v).map_err(|why| format!("verb {}: {why}", i + 1)))
        .collect()
}

fn verb(value: serde_json::Value) -> Result<Verb, String> {
    let serde_json::Value::Object(map) = value else {
        return Err("not an object".into());
    };
    let mut entries = map.into_iter();
    let (Some((name, body)), None) = (entries.next(), entries.next()) else {
        return Err("a verb is an object with one key, its name".into());
    };
    let read = |e: serde_json::Error| format!("{name}: {e}");
    let verb = match name.as_str() {
        "say" => {
            let say: Say = serde_json::from_value(body).map_err(read)?;
            check_say(&say)?;
            Verb::Say(say)
        }
        "play" => match serde_json::from_value::<Named>(body).map_err(read)? {
            Named {
                prompt: Some(p),
                url: None,
            } => Verb::Play(p),
            Named {
                prompt: None,
                url: Some(u),
            } => Verb::PlayUrl(u),
            _ => return Err("play: one of prompt or url".into()),
        },
        "pause" => {
            let s = serde_json::from_value::<Seconds>(body)
                .map_err(read)?
                .seconds;
            if s > MAX_PAUSE_S {
                return Err(format!("pause: at most {MAX_PAUSE_S} seconds"));
            }
            Verb::Pause(s)
        }
        "gather" => {
            let g: Gather = serde_json::from_value(body).map_err(read)?;
            if g.min_digits == 0
                || g.min_digits > g.max_digits
                || g.max_digits > 32
                || g.attempts == 0
                || g.attempts > 5
            {
                return Err(
                    "gather: need 1 <= min_digits <= max_digits <= 32 and 1 to 5 attempts".into(),
                );
            }
            if g.secret && g.into.is_none() {
                return Err("gather: a secret gather names the variable it fills (into)".into());
            }
            g.say.iter().try_for_each(check_say)?;
            Verb::Gather(g)
        }
        "set" => {
            let serde_json::Value::Object(values) = body else {
                return Err("set: an object of names and values".into());
            };
            let mut out = Vec::new();
            for (k, v) in values {
                let text = match v {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::Bool(b) => b.to_string(),
                    _ => return Err(format!("set {k}: a string, number or boolean")),
                };
                out.push((k, text));
            }
            Verb::Set(out)
        }
        "redirect" => Verb::Redirect(serde_json::from_value::<Url>(body).map_err(read)?.url),
        "hangup" => Verb::Hangup,
        "reject" => match serde_json::from_value::<Refusal>(body)
            .map_err(read)?
            .reason
        {
            None => Verb::Reject { busy: false },
            Some(reason) => Verb::Reject {
                busy: rejection_is_busy(&reason)?,
            },
        },
        "transfer" => Verb::Transfer(serde_json::from_value(body).map_err(read)?),
        "language" => Verb::Language(serde_json::from_value::<Code>(body).map_err(read)?.code),
        "verify" => Verb::Verify(serde_json::from_value(body).map_err(read)?),
        "return" => match body {
            serde_json::Value::String(target) => Verb::Return(target),
            _ => return Err("return: the name of a step or menu".into()),
        },
        other => return Err(format!("unknown verb {other:?}")),
    };
    Ok(verb)
}

/// Twilio's two reasons: `busy` (486) or `rejected` (603).
pub fn rejection_is_busy(reason: &str) -> Result<bool, String> {
    match reason {
        "busy" => Ok(true),
        "rejected" => Ok(false),
        other => Err(format!(
            "reject: reason {other:?} is neither busy nor rejected"
        )),
    }
}

fn check_say(say: &Say) -> Result<(), String> {
    let given = [
        say.text.is_some(),
        say.prompt.is_some(),
        say.number.is_some(),
        say.digits.is_some(),
        say.amount.is_some(),
        say.url.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err("say: exactly one of text, prompt, number, digits, amount, url".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verb_reads() {
        let body = br#"{"verbs": [
            {"say": {"text": "Hello"}}, {"play": {"prompt": "menu"}}, {"pause": {"seconds": 1}},
            {"gather": {"max_digits": 4, "secret": true, "into": "pin", "say": [{"prompt": "enter_pin"}], "action": "/pin"}},
            {"set": {"a": "b", "n": 3}}, {"redirect": {"url": "/next"}}, {"transfer": {"to": "sip:a@b"}},
            {"language": {"code": "es"}}, {"verify": {"account": "12345", "pin": "pin", "action": "/v"}},
            {"return": "main"}, {"hangup": {}}, {"reject": {"reason": "busy"}}, {"reject": {}}
        ]}"#;
        let verbs = parse(body).unwrap();
        assert_eq!(verbs.len(), 13);
        assert_eq!(verbs[11], Verb::Reject { busy: true });
        assert_eq!(verbs[12], Verb::Reject { busy: false });
        assert!(
            matches!(&verbs[3], Verb::Gather(g) if g.secret && g.into.as_deref() == Some("pin"))
        );
        assert_eq!(
            verbs[4],
            Verb::Set(vec![("a".into(), "b".into()), ("n".into(), "3".into())])
        );
        assert_eq!(verbs[9], Verb::Return("main".into()));
    }

    #[test]
    fn a_bad_verb_refuses_the_reply_with_its_name() {
        for (body, why) in [
            (r#"{"verbs": [{"sing": {}}]}"#, "unknown verb \"sing\""),
            (
                r#"{"verbs": [{"reject": {"reason": "later"}}]}"#,
                "neither busy nor rejected",
            ),
            (
                r#"{"verbs": [{"say": {"text": "a", "prompt": "b"}}]}"#,
                "exactly one",
            ),
            (r#"{"verbs": [{"say": {"txt": "a"}}]}"#, "unknown field"),
            (r#"{"verbs": [{"pause": {"seconds": 3600}}]}"#, "at most 60"),
            (
                r#"{"verbs": [{"gather": {"max_digits": 4, "secret": true}}]}"#,
                "into",
            ),
            (
                r#"{"verbs": [{"say": {"text": "a"}, "hangup": {}}]}"#,
                "one key",
            ),
            (r#"{"verb": []}"#, "unreadable"),
        ] {
            let err = parse(body.as_bytes()).unwrap_err();
            assert!(err.contains(why), "{why:?} not in {err}");
        }
        let many = format!(
            r#"{{"verbs": [{}]}}"#,
            vec![r#"{"hangup": {}}"#; 101].join(",")
        );
        assert!(parse(many.as_bytes()).unwrap_err().contains("at most 100"));
    }
}

//! TwiML, for applications written against Twilio: the `<Response>` they answer read into the
//! same verbs the JSON dialect has, and the requests they expect (form-encoded, Twilio's
//! parameter names, `X-Twilio-Signature`) so Twilio's own helper libraries accept them.

use base64::Engine;
use hmac::{Hmac, Mac};
use quick_xml::events::Event;
use quick_xml::Reader;
use sha1::Sha1;

use super::verbs::{Gather, Say, Transfer, Verb, Verify, MAX_PAUSE_S, MAX_VERBS};

/// How deep a reply may nest (`<Response><Gather><Say>`).
const MAX_DEPTH: usize = 3;
/// How often one `<Say>` or `<Play>` may repeat (`loop="0"` means "many" to Twilio).
const MAX_LOOP: usize = 10;

/// An element with its attributes, text and children.
#[derive(Debug, Default)]
struct Node {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn tree(xml: &str) -> Result<Node, String> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut stack: Vec<Node> = vec![Node::default()];
    let mut nodes = 0;
    loop {
        let event = reader.read_event().map_err(|e| format!("not XML: {e}"))?;
        if matches!(event, Event::Start(_) | Event::Empty(_)) {
            nodes += 1;
            if nodes > 4 * MAX_VERBS || stack.len() > MAX_DEPTH {
                return Err("too many or too deeply nested elements".into());
            }
        }
        let text = match event {
            Event::Start(e) => {
                stack.push(element(&e)?);
                continue;
            }
            Event::Empty(e) => {
                let node = element(&e)?;
                stack.last_mut().ok_or("unbalanced")?.children.push(node);
                continue;
            }
            Event::Text(t) => t.unescape().map_err(|e| format!("text: {e}"))?.into_owned(),
            Event::CData(t) => String::from_utf8_lossy(&t).into_owned(),
            Event::End(_) => {
                let done = stack.pop().ok_or("unbalanced")?;
                let parent = stack.last_mut().ok_or("unbalanced end tag")?;
                parent.children.push(done);
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        stack.last_mut().ok_or("unbalanced")?.text.push_str(&text);
    }
    let mut top = stack
        .pop()
        .filter(|_| stack.is_empty())
        .ok_or("an element is not closed")?;
    match top.children.len() {
        1 if top.children[0].name == "Response" => Ok(top.children.remove(0)),
        _ => Err("the root element is not <Response>".into()),
    }
}

fn element(e: &quick_xml::events::BytesStart<'_>) -> Result<Node, String> {
    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for attr in e.attributes() {
        let attr = attr.map_err(|e| format!("<{name}>: {e}"))?;
        let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
        let value = attr
            .unescape_value()
            .map_err(|e| format!("<{name}>: {e}"))?
            .into_owned();
        attrs.push((key, value));
    }
    Ok(Node {
        name,
        attrs,
        ..Node::default()
    })
}

/// A reply's verbs; `here` is the document's URL (a `<Gather>` without `action` posts to it).
pub fn parse(xml: &[u8], here: &str) -> Result<Vec<Verb>, String> {
    let text = std::str::from_utf8(xml).map_err(|_| "TwiML is not UTF-8")?;
    let response = tree(text)?;
    let mut verbs = Vec::new();
    for node in &response.children {
        verbs.extend(verb(node, here)?);
    }
    if verbs.len() > MAX_VERBS {
        return Err(format!("{} verbs (at most {MAX_VERBS})", verbs.len()));
    }
    Ok(verbs)
}

fn repeat(node: &Node) -> usize {
    match node.attr("loop").and_then(|l| l.parse::<usize>().ok()) {
        Some(0) => MAX_LOOP,
        Some(n) => n.min(MAX_LOOP),
        None => 1,
    }
}

/// What a `<Say>`, `<Play>` or `<Pause>` says, as a gather's question or alone.
fn sayable(node: &Node) -> Result<Vec<Say>, String> {
    let blank = Say {
        text: None,
        prompt: None,
        number: None,
        digits: None,
        amount: None,
        url: None,
    };
    let one = match node.name.as_str() {
        "Say" => Say {
            text: Some(node.text.trim().to_string()),
            ..blank
        },
        "Play" if node.text.contains("://") => Say {
            url: Some(node.text.trim().to_string()),
            ..blank
        },
        "Play" => Say {
            prompt: Some(node.text.trim().to_string()),
            ..blank
        },
        other => return Err(format!("<{other}> cannot be said inside <Gather>")),
    };
    Ok(vec![one; repeat(node)])
}

fn verb(node: &Node, here: &str) -> Result<Vec<Verb>, String> {
    let verbs = match node.name.as_str() {
        "Play" if node.text.contains("://") => {
            vec![Verb::PlayUrl(node.text.trim().to_string()); repeat(node)]
        }
        "Say" | "Play" => sayable(node)?.into_iter().map(Verb::Say).collect(),
        "Pause" => {
            let length = node
                .attr("length")
                .and_then(|l| l.parse().ok())
                .unwrap_or(1);
            vec![Verb::Pause(u64::min(length, MAX_PAUSE_S))]
        }
        "Gather" => {
            let mut say = Vec::new();
            for child in &node.children {
                if child.name != "Pause" {
                    say.extend(sayable(child)?);
                }
            }
            let number = |name: &str, default: u64| {
                node.attr(name)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(default)
            };
            let max_digits = number("numDigits", 32).clamp(1, 32) as usize;
            // With numDigits alone Twilio submits at the last digit; finishOnKey's default `#`
            // would make us wait for it.
            let finish = match (node.attr("finishOnKey"), node.attr("numDigits")) {
                (Some(key), _) => key,
                (None, Some(_)) => "",
                (None, None) => "#",
            };
            if node.attr("secret") == Some("true") && node.attr("into").is_none() {
                return Err("<Gather secret> names the variable it fills (into)".into());
            }
            vec![Verb::Gather(Gather {
                min_digits: 1,
                max_digits,
                finish_on_key: finish.chars().next().map(String::from),
                timeout_s: number("timeout", 5),
                inter_digit_timeout_s: number("timeout", 5),
                attempts: 1,
                say,
                // Our extensions (Twilio has no secret gather): `into` names the variable,
                // `secret="true"` keeps the digits in the IVR for `<Verify>`.
                into: node.attr("into").map(String::from),
                secret: node.attr("secret") == Some("true"),
                action: Some(node.attr("action").unwrap_or(here).to_string()),
                post_empty: node.attr("actionOnEmptyResult") == Some("true"),
            })]
        }
        "Redirect" => vec![Verb::Redirect(node.text.trim().to_string())],
        // Our extension: the account and a secret gather's PIN checked by the IVR, which posts
        // only the outcome (`Verified`, `VerifyReason`, `Greeting`, `Account` masked).
        "Verify" => {
            let required = |name: &str| {
                node.attr(name)
                    .map(String::from)
                    .ok_or_else(|| format!("<Verify> without {name}"))
            };
            vec![Verb::Verify(Verify {
                account: required("account")?,
                pin: required("pin")?,
                action: Some(node.attr("action").unwrap_or(here).to_string()),
            })]
        }
        "Hangup" => vec![Verb::Hangup],
        "Reject" => vec![Verb::Reject {
            busy: super::verbs::rejection_is_busy(node.attr("reason").unwrap_or("rejected"))?,
        }],
        "Dial" => {
            let target = node
                .children
                .iter()
                .find(|c| c.name == "Sip" || c.name == "Number")
                .map(|c| (c.name.as_str(), c.text.trim().to_string()))
                .unwrap_or(("Number", node.text.trim().to_string()));
            let to = match target {
                ("Sip", uri) => uri,
                (_, number) => format!("tel:{number}"),
            };
            vec![Verb::Transfer(Transfer {
                to,
                mode: Some("bridge".into()),
                action: node.attr("action").map(String::from),
                timeout_s: node.attr("timeout").and_then(|t| t.parse().ok()),
            })]
        }
        other => return Err(format!("<{other}> is not a verb we run")),
    };
    Ok(verbs)
}

/// `X-Twilio-Signature` for a POST of `params` to `url`: base64 of HMAC-SHA1 over the URL and
/// every parameter's name and value, sorted by name (Twilio's scheme).
pub fn signature(auth_token: &[u8], url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token).expect("HMAC takes any key length");
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// `params` as an `application/x-www-form-urlencoded` body.
pub fn form(params: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: &str = "https://app.example.com/voice";

    #[test]
    fn a_twilio_reply_reads_as_verbs() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <Say voice="alice" loop="2">Welcome &amp; hello</Say>
  <Gather numDigits="5" action="/account" timeout="7"><Say>Enter your account</Say><Play>enter_account</Play></Gather>
  <Pause length="2"/>
  <Redirect method="POST">/again</Redirect>
  <Dial timeout="20" action="/after"><Sip>sip:agents@pbx.example</Sip></Dial>
  <Hangup/>
  <Reject reason="busy"/><Reject/>
</Response>"#;
        let verbs = parse(xml, HERE).unwrap();
        assert_eq!(verbs.len(), 9);
        assert_eq!(verbs[7], Verb::Reject { busy: true });
        assert_eq!(verbs[8], Verb::Reject { busy: false });
        assert!(matches!(&verbs[0], Verb::Say(s) if s.text.as_deref() == Some("Welcome & hello")));
        let Verb::Gather(g) = &verbs[2] else {
            panic!("{verbs:?}")
        };
        assert_eq!(
            (g.max_digits, g.timeout_s, g.action.as_deref()),
            (5, 7, Some("/account"))
        );
        assert_eq!(g.say.len(), 2);
        assert!(!g.post_empty);
        assert_eq!(verbs[3], Verb::Pause(2));
        assert_eq!(verbs[4], Verb::Redirect("/again".into()));
        let Verb::Transfer(t) = &verbs[5] else {
            panic!("{verbs:?}")
        };
        assert_eq!(
            (t.to.as_str(), t.timeout_s, t.action.as_deref()),
            ("sip:agents@pbx.example", Some(20), Some("/after"))
        );
        assert_eq!(verbs[6], Verb::Hangup);
        let bare = parse(b"<Response><Gather/></Response>", HERE).unwrap();
        assert!(matches!(&bare[0], Verb::Gather(g) if g.action.as_deref() == Some(HERE)));
    }

    #[test]
    fn a_secret_gather_and_verify_are_our_extensions() {
        let xml = br#"<Response><Gather numDigits="4" secret="true" into="pin" action="/pin"/><Verify account="12345" pin="pin" action="/verified"/><Verify account="1" pin="pin"/></Response>"#;
        let verbs = parse(xml, HERE).unwrap();
        assert!(
            matches!(&verbs[0], Verb::Gather(g) if g.secret && g.into.as_deref() == Some("pin"))
        );
        let Verb::Verify(v) = &verbs[1] else {
            panic!("{verbs:?}")
        };
        assert_eq!(
            (v.account.as_str(), v.pin.as_str(), v.action.as_deref()),
            ("12345", "pin", Some("/verified"))
        );
        assert!(matches!(&verbs[2], Verb::Verify(v) if v.action.as_deref() == Some(HERE)));
        let plain = parse(br#"<Response><Gather into="pin"/></Response>"#, HERE).unwrap();
        assert!(matches!(&plain[0], Verb::Gather(g) if !g.secret));
        let err = parse(br#"<Response><Verify pin="pin"/></Response>"#, HERE).unwrap_err();
        assert!(err.contains("without account"), "{err}");
    }

    #[test]
    fn what_we_cannot_run_is_refused_by_name() {
        for (xml, why) in [
            (
                "<Response><Enqueue>support</Enqueue></Response>",
                "<Enqueue> is not a verb",
            ),
            ("<Reply><Hangup/></Reply>", "not <Response>"),
            ("<Response><Say>open", "not closed"),
            (
                r#"<Response><Gather secret="true"/></Response>"#,
                "names the variable",
            ),
            (
                r#"<Response><Reject reason="later"/></Response>"#,
                "neither busy nor rejected",
            ),
            (
                "<Response><Gather><Dial>1</Dial></Gather></Response>",
                "cannot be said",
            ),
            (
                "<Response><Gather><Say><Say>deep</Say></Say></Gather></Response>",
                "too deeply nested",
            ),
        ] {
            let err = parse(xml.as_bytes(), HERE).unwrap_err();
            assert!(err.contains(why), "{why:?} not in {err}");
        }
        // A flood of elements is refused while reading, before any tree is held.
        let flood = format!("<Response>{}</Response>", "<Pause/>".repeat(100_000));
        assert!(parse(flood.as_bytes(), HERE)
            .unwrap_err()
            .contains("too many"));
    }

    #[test]
    fn the_signature_is_twilios() {
        // Twilio's documented example (auth token 12345, this URL and these parameters), as
        // twilio-python's RequestValidator.compute_signature computes it.
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            signature(b"12345", url, &params),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
        assert_eq!(
            form(&params[..2]),
            "CallSid=CA1234567890ABCDE&Caller=%2B12349013030"
        );
    }
}

//! A conversation without a phone: `ivr flow test` runs the shipped flows' conversation tests
//! (`sip-config/tests/`) and explains a case that goes another way by the step where it did;
//! `ivr simulate` prints a conversation as its transcript, never a PIN.

use crate::support;

use std::process::{Command, Output};

fn ivr(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ivr"))
        .args(args)
        .current_dir(support::project_dir())
        // The resampled prompts, shared with the other tests.
        .env(
            "IVR_PROMPTS__CACHE_DIR",
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("pcm-cache"),
        )
        .output()
        .expect("the ivr binary runs")
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn the_shipped_flows_pass_their_conversation_tests() {
    let cases: Vec<String> = std::fs::read_dir(support::project_dir().join("sip-config/tests"))
        .unwrap()
        .flatten()
        .map(|e| format!("sip-config/tests/{}", e.file_name().to_string_lossy()))
        .filter(|name| name.ends_with(".toml"))
        .collect();
    assert!(cases.len() >= 5, "{cases:?}");
    let mut args = vec!["flow", "test"];
    args.extend(cases.iter().map(String::as_str));
    let out = ivr(&args);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains(" passed, 0 failed"), "{said}");
    assert!(!said.contains("2468"), "a PIN was printed: {said}");
}

#[test]
fn a_case_that_expects_the_wrong_post_fails_naming_the_step() {
    let dir = support::TempDir::new("flow-test");
    let farm = support::project_dir().join("sip-config/examples/farm.toml");
    let case = dir.0.join("wrong.toml");
    std::fs::write(
        &case,
        format!(
            "flow = {:?}\n[[case]]\nname = \"a birth, says the test\"\nkeys = [\"1\", \"12345#\", \"1\"]\nendpoints.farm = {{ body = {{}} }}\nexpect_posts.farm = [{{ event = \"birth\", cow = \"12345\" }}]\n",
            farm.display()
        ),
    )
    .unwrap();
    let out = ivr(&["flow", "test", case.to_str().unwrap()]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("FAIL"), "{said}");
    assert!(
        said.contains(r#"at step "record": posted {"caller":"+15550100","cow":"12345","event":"death"} to farm, expected {"cow":"12345","event":"birth"}"#),
        "{said}"
    );
}

#[test]
fn simulate_prints_the_farm_lines_transcript_and_exits_0() {
    let dir = support::TempDir::new("simulate");
    let reply = dir.0.join("reply.json");
    std::fs::write(&reply, r#"{"message": "Thank you, recorded."}"#).unwrap();
    let endpoint = format!("farm={}", reply.display());
    let out = ivr(&[
        "simulate",
        "--flow",
        "sip-config/examples/farm.toml",
        "--keys",
        "1 12345# 1 9",
        "--fast",
        "--endpoint",
        &endpoint,
    ]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    for line in [
        "IVR: Hello. You have reached the farm line.",
        "-> cow",
        "caller presses: 12345#",
        "cow = \"12345\"",
        "IVR: Please enter the 5 digit cow identifier",
        r#"posted to farm: {"caller":"+15550100","cow":"12345","event":"death"}"#,
        "message = \"Thank you, recorded.\"",
        "ended: the IVR hung up",
    ] {
        assert!(said.contains(line), "{line:?} missing from:\n{said}");
    }
}

#[test]
fn simulate_never_prints_a_pin() {
    let dir = support::TempDir::new("simulate-pin");
    let users = dir.0.join("users.toml");
    std::fs::copy(
        support::project_dir().join("sip-config/users.example.toml"),
        &users,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ivr"))
        .args(["simulate", "--keys", "12345# 2468# 1 9", "--fast"])
        .current_dir(support::project_dir())
        .env("IVR_DIRECTORY__USERS", &users)
        .env("IVR_DIRECTORY__PIN_KEY_FILE", dir.0.join("pin.key"))
        .env(
            "IVR_PROMPTS__CACHE_DIR",
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("pcm-cache"),
        )
        .output()
        .unwrap();
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("caller presses: ****"), "{said}");
    assert!(said.contains("pin = \"****\""), "{said}");
    assert!(
        said.contains("(balance_is)"),
        "the login went through: {said}"
    );
    assert!(!said.contains("2468"), "a PIN was printed: {said}");
}

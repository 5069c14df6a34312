//! Bridged transfer (`mode = "bridge"`): the IVR calls the target itself and relays the audio
//! between the two calls. The targets are real peers: baresip answering and playing a tone,
//! SIPp behind digest authentication echoing what it hears, and SIPp ringing until CANCELled.

use crate::support;
use support::process::Peer;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::audio::{read_recording, tone, tone_windows, write_wav};
use support::raw::{pcmu_packet, Answered, RawPhone, PHONE_SSRC};
use support::{baresip, free_port, project_dir, require_tool, rtp_block, scenario, Ivr, TempDir};

const LOGIN_THEN_OPERATOR: &str = "24680#1357#0";

/// The shipped flow with its operator (menu key 0) bridged to `target`.
fn bridged_flow(dir: &TempDir, target: &str, ring_s: u32) -> String {
    let shipped = std::fs::read_to_string(project_dir().join("sip-config/flow.toml")).unwrap();
    let flow = shipped.replace(
        "sip:agents@pbx.example\", mode = \"refer\"",
        &format!("{target}\", mode = \"bridge\", timeout_s = {ring_s}"),
    );
    assert_ne!(flow, shipped, "the shipped flow's operator transfer moved");
    let path = dir.0.join("flow.toml");
    std::fs::write(&path, flow).unwrap();
    path.display().to_string()
}

/// The 183 with SDP and the key packets `agent_rings.xml` sends as early media when asked.
const EARLY_MEDIA: &str = r#"  <send>
    <![CDATA[
      SIP/2.0 183 Session Progress
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]agent
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:agent@[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=agent 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000

    ]]>
  </send>
  <nop><action><exec play_pcap_audio="/usr/share/sip-tester/dtmf_2833_5.pcap"/></action></nop>
"#;

/// The ringing target's scenario, with or without early media.
fn ringing_scenario(dir: &TempDir, early_media: bool) -> std::path::PathBuf {
    let template = std::fs::read_to_string(scenario("agent_rings.xml")).unwrap();
    let media = if early_media { EARLY_MEDIA } else { "" };
    let path = dir.0.join("agent_rings.xml");
    std::fs::write(&path, template.replace("EARLY_MEDIA\n", media)).unwrap();
    path
}

/// An IVR whose operator key bridges to the target at `port` (ringing at most `ring_s`), with
/// `env` besides, and a raw-socket caller (call ID `TAG-1`) that has logged in and pressed 0.
fn operator_pressed(
    tag: &str,
    dir: &TempDir,
    port: u16,
    ring_s: u32,
    env: &[(&str, &str)],
) -> (Ivr, RawPhone, Answered) {
    let flow = bridged_flow(dir, &format!("sip:agents@127.0.0.1:{port}"), ring_s);
    let mut all = vec![("IVR_FLOW__FILE", flow.as_str())];
    all.extend_from_slice(env);
    let ivr = Ivr::start(tag, &all);
    let phone = RawPhone::new("127.0.0.1", &ivr);
    let call = phone.call(&format!("{tag}-1")).expect("the IVR answers");
    std::thread::sleep(Duration::from_millis(500));
    phone.press(call.rtp_port, LOGIN_THEN_OPERATOR);
    (ivr, phone, call)
}

/// SIPp playing the transfer target: its process and SIP port.
fn sipp_agent(scenario_path: &Path, dir: &TempDir, extra: &[&str]) -> (Peer, u16) {
    require_tool("sipp", "sip-tester");
    let port = free_port();
    let media = rtp_block(4).0;
    let child = Peer::spawn(
        Command::new("sipp")
            .current_dir(&dir.0)
            .args(["-sf", scenario_path.to_str().unwrap()])
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-mp", &media.to_string()])
            .args(["-m", "1", "-nostdin", "-timeout", "40s", "-timeout_error"])
            .args(["-trace_err"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    )
    .expect("start sipp");
    std::thread::sleep(Duration::from_millis(300));
    (child, port)
}

fn assert_sipp_passed(sipp: Peer, dir: &TempDir, what: &str) {
    let output = sipp.wait_with_output().unwrap();
    let errors: String = std::fs::read_dir(&dir.0)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("errors.log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        output.status.success(),
        "{what}: {}\n{errors}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A stranger's PCMU packets: their payload is all this byte.
const STRANGER: u8 = 0x77;

/// Sends PCMU packets whose payload is all `byte` for `seconds`: how many came back carrying
/// the same payload, and how many carried a stranger's.
fn round_trip(phone: &RawPhone, rtp_port: u16, byte: u8, seconds: u64) -> (usize, usize) {
    let rtp = phone.rtp.try_clone().unwrap();
    rtp.set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let (mut back, mut foreign, mut buf) = (0, 0, [0u8; 2048]);
    let start = Instant::now();
    let mut seq = 1000u16;
    while start.elapsed() < Duration::from_secs(seconds) {
        let packet = pcmu_packet(seq, PHONE_SSRC, byte);
        rtp.send_to(&packet, ("127.0.0.1", rtp_port)).unwrap();
        seq = seq.wrapping_add(1);
        let next = Instant::now() + Duration::from_millis(20);
        while Instant::now() < next {
            if let Ok((n, _)) = rtp.recv_from(&mut buf) {
                if n == 12 + 160 && buf[12..n].iter().all(|&b| b == byte) {
                    back += 1;
                }
                if n > 12 && buf[12..n].iter().all(|&b| b == STRANGER) {
                    foreign += 1;
                }
            }
        }
    }
    (back, foreign)
}

/// A stranger who sprays PCMU at every port of the IVR's RTP range but the caller's, for
/// `seconds`: whatever reaches the bridge's other stream must not reach the caller.
fn stranger_sprays(ivr: &Ivr, caller_port: u16, seconds: u64) -> std::thread::JoinHandle<()> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let (first, last) = ivr.rtp;
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut seq = 0u16;
        while start.elapsed() < Duration::from_secs(seconds) {
            let packet = pcmu_packet(seq, 0xbad, STRANGER);
            for port in (first..=last).filter(|&p| p != caller_port) {
                let _ = socket.send_to(&packet, ("127.0.0.1", port));
            }
            seq = seq.wrapping_add(1);
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

/// The call's record, once written (it follows the call's end by a moment).
fn record_line(path: &Path, call_id: &str) -> String {
    let start = Instant::now();
    loop {
        let records = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(line) = records.lines().find(|l| l.contains(call_id)) {
            return line.to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no record of {call_id}:\n{records}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_digest_protected_target_hears_the_caller_re_invites_and_its_hang_up_ends_the_call() {
    let dir = TempDir::new("bridge-digest");
    let (agent, port) = sipp_agent(&scenario("agent_digest.xml"), &dir, &["-rtp_echo"]);
    let records = dir.0.join("calls.jsonl");
    let env = [
        ("IVR_TRANSFER__USERNAME", "ivr-agent"),
        ("IVR_TRANSFER__PASSWORD", "b3ridge"),
        ("IVR_CDR__FILE", records.to_str().unwrap()),
    ];
    let (ivr, phone, call) = operator_pressed("bridge-digest", &dir, port, 8, &env);
    ivr.wait_for_line(&["bridged: the target answered"], Duration::from_secs(15));
    // Our audio goes out through the bridge to SIPp, which sends it back the same way; a
    // stranger spraying the IVR's ports meanwhile gets nothing through.
    let stranger = stranger_sprays(&ivr, call.rtp_port, 2);
    let (echoed, foreign) = round_trip(&phone, call.rtp_port, 0x55, 2);
    stranger.join().unwrap();
    assert_eq!(
        foreign, 0,
        "a stranger's packets reached the caller through the bridge"
    );
    assert!(
        echoed >= 50,
        "only {echoed} of ~100 packets came back through both calls"
    );
    assert!(
        phone.await_bye(Duration::from_secs(10)).is_some(),
        "the target's BYE ends the caller's call"
    );
    assert_sipp_passed(
        agent,
        &dir,
        "the target saw a good digest answer, its re-INVITE answered, then BYE",
    );
    ivr.wait_for_line(&["re-INVITE", "with_sdp=true"], Duration::from_secs(1));
    ivr.wait_for_line(&["the transfer target hung up"], Duration::from_secs(2));
    ivr.wait_for_log("reason=\"server-bye\"", Duration::from_secs(2));
    let record = record_line(&records, "bridge-digest-1");
    assert!(
        record.contains(&format!(
            "\"transferred_to\":\"sip:agents@127.0.0.1:{port}\""
        )),
        "{record}"
    );
    let bridged: f64 = record
        .split("\"bridged_s\":")
        .nth(1)
        .and_then(|r| r.split([',', '}']).next()?.parse().ok())
        .unwrap_or_else(|| panic!("no bridged_s: {record}"));
    assert!((2.0..10.0).contains(&bridged), "bridged {bridged} s");
    assert!(
        !ivr.log_text().contains("b3ridge"),
        "the password is never logged"
    );
}

#[test]
fn a_caller_who_hangs_up_after_the_answer_ends_the_targets_call_with_bye() {
    let dir = TempDir::new("bridge-caller-bye");
    let (agent, port) = sipp_agent(&scenario("agent_answers.xml"), &dir, &[]);
    let (ivr, phone, call) = operator_pressed("bridge-caller-bye", &dir, port, 10, &[]);
    ivr.wait_for_line(&["bridged: the target answered"], Duration::from_secs(15));
    phone.bye(&call);
    assert_sipp_passed(agent, &dir, "the target got BYE when the caller hung up");
    ivr.wait_for_line(
        &["call ended", "reason=\"caller-bye\""],
        Duration::from_secs(2),
    );
}

#[test]
fn a_caller_who_hangs_up_while_the_target_rings_cancels_its_invite() {
    let dir = TempDir::new("bridge-cancel");
    let (agent, port) = sipp_agent(&ringing_scenario(&dir, false), &dir, &[]);
    let (ivr, phone, call) = operator_pressed("bridge-cancel", &dir, port, 30, &[]);
    ivr.wait_for_line(&["bridging", "bridge-cancel-1"], Duration::from_secs(15));
    assert!(
        phone.hears_prompt(Duration::from_secs(3)),
        "ringback while it rings"
    );
    std::thread::sleep(Duration::from_secs(1));
    phone.bye(&call);
    assert_sipp_passed(agent, &dir, "the target's INVITE was CANCELled");
    ivr.wait_for_line(
        &["the call we placed failed", "status=487"],
        Duration::from_secs(2),
    );
}

#[test]
fn the_targets_early_media_reaches_the_caller_while_it_rings() {
    let dir = TempDir::new("bridge-early");
    let (agent, port) = sipp_agent(&ringing_scenario(&dir, true), &dir, &[]);
    let (ivr, phone, call) = operator_pressed("bridge-early", &dir, port, 30, &[]);
    ivr.wait_for_line(&["bridging", "bridge-early-1"], Duration::from_secs(15));
    // The target's key packets (payload type 101, event 5) come through before any answer.
    let start = Instant::now();
    let mut buf = [0u8; 2048];
    let mut events = 0;
    phone
        .rtp
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    while start.elapsed() < Duration::from_secs(5) && events < 3 {
        if let Ok((n, _)) = phone.rtp.recv_from(&mut buf) {
            if n >= 16 && buf[1] & 0x7f == 101 && buf[12] == 5 {
                events += 1;
            }
        }
    }
    assert!(
        events >= 3,
        "the target's early media never reached the caller"
    );
    phone.bye(&call);
    assert_sipp_passed(agent, &dir, "the target's INVITE was CANCELled");
}

#[test]
fn a_target_that_does_not_answer_in_time_sends_the_caller_to_the_fallback() {
    let dir = TempDir::new("bridge-no-answer");
    let (agent, port) = sipp_agent(&ringing_scenario(&dir, false), &dir, &[]);
    let (ivr, phone, call) = operator_pressed("bridge-no-answer", &dir, port, 2, &[]);
    ivr.wait_for_line(&["transfer failed", "status=408"], Duration::from_secs(20));
    assert_sipp_passed(
        agent,
        &dir,
        "the target's INVITE was CANCELled at the ring time",
    );
    // Back in the menu after the fallback: 9 is read as a menu option and says goodbye.
    std::thread::sleep(Duration::from_secs(3));
    phone.press(call.rtp_port, "9");
    ivr.wait_for_line(&["menu option", "key=9"], Duration::from_secs(10));
    assert!(phone.await_bye(Duration::from_secs(15)).is_some());
}

/// baresip that answers every call by itself, playing `say.wav`.
fn baresip_agent(dir: &Path) -> (Peer, u16, u16) {
    require_tool("baresip", "baresip");
    let (sip, ctrl) = (free_port(), free_port());
    baresip::config(dir, sip, ctrl, &baresip::Secure::default());
    std::fs::write(
        dir.join("accounts"),
        "<sip:agent@127.0.0.1>;regint=0;answermode=auto;audio_codecs=PCMU,PCMA\n",
    )
    .unwrap();
    let child = Peer::spawn(
        Command::new("timeout")
            .args(["60", "baresip", "-f", dir.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    (child, sip, ctrl)
}

#[test]
fn baresip_callers_and_agents_hear_each_other_through_the_bridge() {
    let agent_dir = TempDir::new("bridge-agent");
    let caller_dir = TempDir::new("bridge-caller");
    // Each side says a tone of its own, so each recording shows where its audio came from.
    write_wav(&agent_dir.0.join("say.wav"), 8000, tone(8000, 1000.0, 60));
    write_wav(&caller_dir.0.join("say.wav"), 8000, tone(8000, 600.0, 60));
    let (mut agent, agent_port, agent_ctrl) = baresip_agent(&agent_dir.0);
    let flow = bridged_flow(&agent_dir, &format!("sip:agent@127.0.0.1:{agent_port}"), 10);
    let ivr = Ivr::start("bridge-baresip", &[("IVR_FLOW__FILE", &flow)]);
    let (mut caller, caller_ctrl) = baresip::call_ivr(&ivr, &caller_dir.0, 60);
    ivr.wait_for_log("call confirmed", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    baresip::press(caller_ctrl, LOGIN_THEN_OPERATOR);
    ivr.wait_for_line(&["bridged: the target answered"], Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(4));
    baresip::command(agent_ctrl, "hangup", "").unwrap();
    ivr.wait_for_line(&["the transfer target hung up"], Duration::from_secs(5));
    ivr.wait_for_log("reason=\"server-bye\"", Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    let _ = baresip::command(agent_ctrl, "quit", "");
    let _ = baresip::command(caller_ctrl, "quit", "");
    let _ = agent.wait();
    let _ = caller.wait();
    let caller_heard = baresip::heard(&caller_dir.0).expect("the caller's recording");
    let (samples, rate) = read_recording(&caller_heard);
    let agent_tone = tone_windows(&samples, rate, 1000.0);
    assert!(
        agent_tone >= 10,
        "the caller heard the agent's 1 kHz tone in only {agent_tone} windows of 200 ms"
    );
    let agent_heard = baresip::heard(&agent_dir.0).expect("the agent's recording");
    let (samples, rate) = read_recording(&agent_heard);
    let caller_tone = tone_windows(&samples, rate, 600.0);
    assert!(
        caller_tone >= 10,
        "the agent heard the caller's 600 Hz tone in only {caller_tone} windows of 200 ms"
    );
}

#[test]
fn a_target_who_hangs_up_leaves_the_caller_with_the_application_which_hears_completed() {
    let dir = TempDir::new("bridge-app");
    let (agent, agent_port) = sipp_agent(&scenario("agent_hangs_up.xml"), &dir, &[]);
    let target = format!("sip:agent@127.0.0.1:{agent_port}");
    let (port, got) = support::http::serve(move |path, _| {
        let verbs = match path {
            "/app" => format!(
                r#"[{{"transfer": {{"to": "{target}", "mode": "bridge", "action": "/after"}}}}, {{"say": {{"text": "not this"}}}}]"#
            ),
            _ => r#"[{"play": {"prompt": "goodbye"}}, {"hangup": {}}]"#.into(),
        };
        (200, format!(r#"{{"verbs": {verbs}}}"#))
    });
    let flow = dir.0.join("app.toml");
    std::fs::write(
        &flow,
        "welcome = \"welcome\"\nstart = \"app\"\n[outcomes]\nno_answer = \"goodbye\"\ngoodbye = \"goodbye\"\nerror = \"sorry_error\"\n[steps.app]\nremote = \"desk\"\n",
    )
    .unwrap();
    let url = format!("http://127.0.0.1:{port}/app");
    let ivr = Ivr::start(
        "bridge-app",
        &[
            ("IVR_FLOW__FILE", flow.to_str().unwrap()),
            ("IVR_ENDPOINTS__DESK__URL", &url),
            ("IVR_ENDPOINTS__DESK__SECRET", "desk-application-secret"),
        ],
    );
    // No keys: the caller waits for our BYE, which comes after the application's goodbye.
    support::assert_sipp_file_ok(&ivr, &support::keys::pcap_scenario(&dir, ""), &[]);
    assert_sipp_passed(agent, &dir, "the target answered, talked and hung up");
    ivr.wait_for_line(
        &["the transfer target hung up: the caller goes back to the flow"],
        Duration::from_secs(2),
    );
    ivr.wait_for_log("reason=\"server-bye\"", Duration::from_secs(5));
    let asked = got.lock().unwrap().clone();
    let paths: Vec<&str> = asked
        .iter()
        .map(|(head, _)| head.split(' ').nth(1).unwrap_or_default())
        .collect();
    assert_eq!(paths, ["/app", "/after"], "{asked:?}");
    let after: serde_json::Value = serde_json::from_str(&asked[1].1).unwrap();
    assert_eq!(after["event"], "transfer");
    assert_eq!(after["status"], "completed", "{after}");
    assert!(
        (1..10).contains(&after["duration_s"].as_u64().unwrap()),
        "{after}"
    );
}

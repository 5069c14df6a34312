//! Real softphones, headless on loopback: baresip records what it hears, linphonec negotiates
//! its first-choice codec.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::audio::{active_span, expected_stream, read_recording};
use support::{free_port, require_tool, Ivr, TempDir};

fn silence_wav(path: &Path, seconds: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for _ in 0..8000 * seconds {
        w.write_sample(0i16).unwrap();
    }
    w.finalize().unwrap();
}

fn baresip_config(dir: &Path, sip_port: u16, ctrl_port: u16) {
    let snd = dir.join("snd");
    std::fs::create_dir_all(&snd).unwrap();
    silence_wav(&dir.join("say.wav"), 30);
    let mut config = std::fs::File::create(dir.join("config")).unwrap();
    write!(
        config,
        "sip_listen 127.0.0.1:{sip_port}\nnet_interface 127.0.0.1\naudio_source aufile,{}\naudio_player aubridge,nobody\n\
         audio_alert aubridge,nobody\nmodule_path /usr/lib/baresip/modules\nmodule stdio.so\nmodule g711.so\n\
         module aufile.so\nmodule aubridge.so\nmodule sndfile.so\nmodule_app account.so\nmodule_app menu.so\n\
         module_app ctrl_tcp.so\nctrl_tcp_listen 127.0.0.1:{ctrl_port}\nsnd_path {}\n",
        dir.join("say.wav").display(),
        snd.display()
    )
    .unwrap();
    std::fs::write(
        dir.join("accounts"),
        "<sip:tester@127.0.0.1>;regint=0;audio_codecs=PCMU,PCMA\n",
    )
    .unwrap();
}

#[test]
fn baresip_hears_the_welcome_and_the_first_question() {
    require_tool("baresip", "baresip");
    let ivr = Ivr::start("baresip", &[]);
    let dir = TempDir::new("baresip");
    baresip_config(&dir.0, free_port(), free_port());
    let status = Command::new("timeout")
        .args([
            "40",
            "baresip",
            "-f",
            dir.0.to_str().unwrap(),
            "-t",
            "10",
            "-e",
        ])
        .arg(format!("/dial sip:ivr@{}", ivr.addr()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "baresip exited with {status}");
    ivr.wait_for_log("reason=\"caller-bye\"", Duration::from_secs(5));
    let recording = std::fs::read_dir(dir.0.join("snd"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .expect("baresip wrote no recording of what it heard");
    let (heard, rate) = read_recording(&recording);
    let heard_span = active_span(&heard, rate);
    let expected_span = active_span(&expected_stream(&["welcome", "enter_account"]), 8000);
    eprintln!("heard {heard_span:.3} s of audio, expected {expected_span:.3} s");
    assert!(
        expected_span > 5.0,
        "the shipped prompts are longer than that"
    );
    let ratio = heard_span / expected_span;
    assert!(
        (0.95..=1.05).contains(&ratio),
        "heard {heard_span:.3} s, expected {expected_span:.3} s"
    );
}

#[test]
fn linphonec_negotiates_its_first_choice_when_we_have_it_and_hears_the_prompts() {
    require_tool("linphonec", "linphone-cli");
    let ivr = Ivr::start("linphone", &[]);
    let dir = TempDir::new("linphone");
    let home = dir.0.join("home");
    std::fs::create_dir_all(home.join(".local/share/linphone")).unwrap();
    let (sip, rtp) = (free_port(), support::rtp_block(2).0);
    std::fs::write(
        dir.0.join("lprc"),
        format!("[sip]\nsip_port={sip}\nbind_address=127.0.0.1\nuse_ipv6=0\n[rtp]\naudio_rtp_port={rtp}\n"),
    )
    .unwrap();
    silence_wav(&dir.0.join("play.wav"), 30);
    let recording = dir.0.join("rec.wav");
    let mut child = Command::new("timeout")
        .args([
            "40",
            "linphonec",
            "-c",
            dir.0.join("lprc").to_str().unwrap(),
            "-d",
            "0",
        ])
        .env("HOME", &home)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let say = |stdin: &mut std::process::ChildStdin, line: String| {
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    };
    say(&mut stdin, "soundcard use files".into());
    say(
        &mut stdin,
        format!("play {}", dir.0.join("play.wav").display()),
    );
    say(&mut stdin, format!("record {}", recording.display()));
    say(&mut stdin, format!("call sip:ivr@{}", ivr.addr()));
    std::thread::sleep(Duration::from_secs(9));
    say(&mut stdin, "terminate".into());
    std::thread::sleep(Duration::from_secs(1));
    say(&mut stdin, "quit".into());
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "linphonec exited with {status}");
    let codec = if cfg!(feature = "opus") {
        "codec=\"opus\""
    } else {
        "codec=\"PCMU\""
    };
    ivr.wait_for_line(&["session negotiated", codec], Duration::from_secs(1));
    ivr.wait_for_log("reason=\"caller-bye\"", Duration::from_secs(5));
    let (heard, rate) = read_recording(&recording);
    let heard_span = active_span(&heard, rate);
    let expected_span = active_span(&expected_stream(&["welcome", "enter_account"]), 8000);
    let ratio = heard_span / expected_span;
    assert!(
        (0.95..=1.05).contains(&ratio),
        "heard {heard_span:.3} s, expected {expected_span:.3} s"
    );
}

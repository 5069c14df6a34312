//! baresip, headless: plays `say.wav` from its folder into the call, records what it hears
//! under `snd/`, and takes commands (keys, quit) on its ctrl_tcp port.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::audio::write_wav;
use super::process::Peer;
use super::{free_port, require_tool, Ivr};

/// How baresip reaches the IVR: plain UDP, or TLS with a certificate and SRTP.
#[derive(Default)]
pub struct Secure {
    /// Certificate and key in one PEM; the CA file that signs the IVR's certificate.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// baresip's `mediaenc`, e.g. `srtp-mand`.
    pub mediaenc: Option<&'static str>,
    /// Register as this user with this password at this registrar (`host:port`), and answer
    /// challenges to calls with them.
    pub account: Option<(&'static str, &'static str, String)>,
    /// baresip's `audio_codecs`; `PCMU,PCMA` when not set.
    pub codecs: Option<&'static str>,
}

pub fn silence_wav(path: &Path, seconds: u32) {
    write_wav(path, 8000, std::iter::repeat_n(0, 8000 * seconds as usize));
}

pub fn config(dir: &Path, sip_port: u16, ctrl_port: u16, secure: &Secure) {
    let snd = dir.join("snd");
    std::fs::create_dir_all(&snd).unwrap();
    if !dir.join("say.wav").exists() {
        silence_wav(&dir.join("say.wav"), 30);
    }
    let mut config = std::fs::File::create(dir.join("config")).unwrap();
    write!(
        config,
        "sip_listen 127.0.0.1:{sip_port}\nnet_interface 127.0.0.1\naudio_source aufile,{}\naudio_player aubridge,nobody\n\
         audio_alert aubridge,nobody\nmodule_path /usr/lib/baresip/modules\nmodule stdio.so\nmodule g711.so\nmodule g722.so\n\
         module aufile.so\nmodule aubridge.so\nmodule sndfile.so\nmodule srtp.so\nmodule_app account.so\nmodule_app menu.so\n\
         module_app ctrl_tcp.so\nctrl_tcp_listen 127.0.0.1:{ctrl_port}\nsnd_path {}\n",
        dir.join("say.wav").display(),
        snd.display()
    )
    .unwrap();
    if let Some((certificate, ca)) = &secure.tls {
        writeln!(
            config,
            "sip_certificate {}\nsip_cafile {}",
            certificate.display(),
            ca.display()
        )
        .unwrap();
    }
    let transport = if secure.tls.is_some() {
        ";transport=tls"
    } else {
        ""
    };
    let mediaenc = secure
        .mediaenc
        .map(|m| format!(";mediaenc={m}"))
        .unwrap_or_default();
    let account = match &secure.account {
        None => format!("<sip:tester@127.0.0.1{transport}>;regint=0"),
        Some((user, password, registrar)) => {
            format!("<sip:{user}@{registrar}{transport}>;auth_pass={password};regint=600")
        }
    };
    std::fs::write(
        dir.join("accounts"),
        format!(
            "{account};audio_codecs={}{mediaenc}\n",
            secure.codecs.unwrap_or("PCMU,PCMA")
        ),
    )
    .unwrap();
}

/// Starts baresip dialling `target` for at most `seconds`; its ctrl_tcp port.
pub fn call(dir: &Path, target: &str, seconds: u32, secure: &Secure) -> (Peer, u16) {
    require_tool("baresip", "baresip");
    let ctrl = free_port();
    config(dir, free_port(), ctrl, secure);
    let child = Peer::spawn(
        Command::new("timeout")
            .args([
                &seconds.to_string(),
                "baresip",
                "-f",
                dir.to_str().unwrap(),
                "-e",
            ])
            .arg(format!("/dial {target}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    (child, ctrl)
}

/// Dials the IVR over plain UDP.
pub fn call_ivr(ivr: &Ivr, dir: &Path, seconds: u32) -> (Peer, u16) {
    call(
        dir,
        &format!("sip:ivr@{}", ivr.addr()),
        seconds,
        &Secure::default(),
    )
}

/// One ctrl_tcp command, framed as a netstring.
pub fn command(ctrl: u16, command: &str, params: &str) -> std::io::Result<()> {
    let json = format!(r#"{{"command":"{command}","params":"{params}","token":"t"}}"#);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", ctrl))?;
    stream.write_all(format!("{}:{json},", json.len()).as_bytes())
}

/// Presses `keys` one by one (`sndcode`: RFC 4733 events), 300 ms apart.
pub fn press(ctrl: u16, keys: &str) {
    for key in keys.chars() {
        command(ctrl, "sndcode", &key.to_string()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

/// The recording of what baresip heard, once it has written one.
pub fn heard(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir.join("snd"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
}

//! linphonec, headless: plays `play.wav`, records `rec.wav` in its folder, types commands.

use std::io::Write;
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::time::Duration;

use super::process::Peer;
use super::{baresip, free_port, require_tool, rtp_block};

pub struct Linphone {
    child: Peer,
    stdin: ChildStdin,
}

impl Linphone {
    /// Plain SIP over UDP; with `tls_ca`, SIP over TLS (trusting that CA) and mandatory SRTP.
    pub fn start(dir: &Path, tls_ca: Option<&Path>) -> Linphone {
        require_tool("linphonec", "linphone-cli");
        let home = dir.join("home");
        std::fs::create_dir_all(home.join(".local/share/linphone")).unwrap();
        let (sip, rtp) = (free_port(), rtp_block(2).0);
        let transport = match tls_ca {
            None => format!("sip_port={sip}\n"),
            Some(ca) => format!(
                "sip_port=-1\nsip_tcp_port=-1\nsip_tls_port={sip}\nroot_ca={}\n\
                 media_encryption=srtp\nmedia_encryption_mandatory=1\n",
                ca.display()
            ),
        };
        std::fs::write(
            dir.join("lprc"),
            format!("[sip]\n{transport}bind_address=127.0.0.1\nuse_ipv6=0\n[rtp]\naudio_rtp_port={rtp}\n"),
        )
        .unwrap();
        baresip::silence_wav(&dir.join("play.wav"), 30);
        let mut child = Peer::spawn(
            Command::new("timeout")
                .args([
                    "40",
                    "linphonec",
                    "-c",
                    dir.join("lprc").to_str().unwrap(),
                    "-d",
                    "0",
                ])
                .env("HOME", &home)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut phone = Linphone { child, stdin };
        phone.say("soundcard use files");
        phone.say(&format!("play {}", dir.join("play.wav").display()));
        phone.say(&format!("record {}", dir.join("rec.wav").display()));
        phone
    }

    pub fn say(&mut self, line: &str) {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
        self.stdin.flush().unwrap();
    }

    pub fn quit(mut self) -> std::process::ExitStatus {
        self.say("terminate");
        std::thread::sleep(Duration::from_secs(1));
        self.say("quit");
        drop(self.stdin);
        self.child.wait().unwrap()
    }
}

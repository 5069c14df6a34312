//! What crossed loopback: tcpdump writes the UDP packets of a port range to a pcap file, read
//! back here as (source port, destination port, payload).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::process::Peer;
use super::require_tool;

pub struct Capture {
    child: Peer,
    file: PathBuf,
}

pub struct Datagram {
    pub from_port: u16,
    pub to_port: u16,
    pub payload: Vec<u8>,
}

impl Capture {
    /// Starts capturing UDP on `lo` to or from `ports` (inclusive), once tcpdump is listening.
    pub fn start(file: PathBuf, ports: (u16, u16)) -> Capture {
        require_tool("tcpdump", "tcpdump");
        let mut child = Peer::spawn(
            Command::new("tcpdump")
                .args(["-i", "lo", "-U", "-n", "-w"])
                .arg(&file)
                .arg(format!("udp portrange {}-{}", ports.0, ports.1))
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        )
        .expect("start tcpdump");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        while stderr.read_line(&mut line).unwrap_or(0) > 0 {
            if line.contains("listening on") {
                return Capture { child, file };
            }
            line.clear();
        }
        let _ = child.wait();
        panic!("tcpdump did not start capturing (it needs root): {line}");
    }

    /// Stops the capture and reads every UDP datagram it holds.
    pub fn stop(mut self) -> Vec<Datagram> {
        std::thread::sleep(Duration::from_millis(200));
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        parse_pcap(&std::fs::read(&self.file).expect("tcpdump wrote its file"))
    }
}

/// Ethernet-framed (as tcpdump frames loopback) IPv4 UDP datagrams of a little-endian pcap.
fn parse_pcap(data: &[u8]) -> Vec<Datagram> {
    assert!(
        data.len() >= 24 && data[..4] == [0xd4, 0xc3, 0xb2, 0xa1],
        "not a little-endian pcap file"
    );
    let le32 = |at: usize| u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
    let be16 = |frame: &[u8], at: usize| u16::from_be_bytes([frame[at], frame[at + 1]]);
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= data.len() {
        let len = le32(at + 8);
        let Some(frame) = data.get(at + 16..at + 16 + len) else {
            break;
        };
        at += 16 + len;
        if frame.len() < 14 + 20 || be16(frame, 12) != 0x0800 {
            continue;
        }
        let ip = &frame[14..];
        let header = usize::from(ip[0] & 0x0f) * 4;
        if ip[9] != 17 || ip.len() < header + 8 {
            continue;
        }
        let udp = &ip[header..];
        out.push(Datagram {
            from_port: be16(udp, 0),
            to_port: be16(udp, 2),
            payload: udp[8..].to_vec(),
        });
    }
    out
}

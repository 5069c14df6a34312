//! The JSON application `bench/run.sh` runs beside the IVR with `MODE=remote`: the bank login
//! as verbs (account, a secret PIN, the IVR's own verify), then back to the flow's greeting and
//! menu, so the load generator's conversation is the same as with the flow file alone.
//! HTTP/1.1 with keep-alive on a tokio runtime of its own; no check of anything it is sent.
//!
//! Usage: bench_app LISTEN (e.g. 127.0.0.1:5090)

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn answer(path: &str, body: &str) -> String {
    match path {
        "/app" => r#"{"verbs": [{"gather": {"max_digits": 10, "say": [{"prompt": "enter_account"}], "into": "account", "action": "/account"}}]}"#.into(),
        "/account" => r#"{"verbs": [{"gather": {"min_digits": 4, "max_digits": 4, "say": [{"prompt": "enter_pin"}], "into": "pin", "secret": true, "action": "/pin"}}]}"#.into(),
        "/pin" => {
            let value: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
            let account = value["vars"]["account"].as_str().unwrap_or_default();
            format!(r#"{{"verbs": [{{"verify": {{"account": "{account}", "pin": "pin", "action": "/verified"}}}}]}}"#)
        }
        "/verified" if body.contains("\"verified\":true") => r#"{"verbs": [{"return": "greeting"}]}"#.into(),
        _ => r#"{"verbs": [{"play": {"prompt": "wrong_credentials"}}, {"hangup": {}}]}"#.into(),
    }
}

async fn serve(mut socket: TcpStream) {
    let mut buf = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    loop {
        let (head_len, length) = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap_or(0))
                    })
                    .unwrap_or(0usize);
                break (end + 4, length);
            }
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        while buf.len() < head_len + length {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let head = String::from_utf8_lossy(&buf[..head_len]).into_owned();
        let body = String::from_utf8_lossy(&buf[head_len..head_len + length]).into_owned();
        buf.drain(..head_len + length);
        let path = head.split(' ').nth(1).unwrap_or_default();
        let reply = answer(path, &body);
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{reply}",
            reply.len()
        );
        if socket.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn main() {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:5090".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let listener = TcpListener::bind(&listen).await.expect("bind");
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(socket));
        }
    });
}

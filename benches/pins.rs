//! What a local login's PIN check costs: a keyed hash (HMAC-SHA-256 under the PIN key) against
//! a legacy Argon2id one, on one core (a current-thread runtime), for a known account with the
//! right PIN, a wrong PIN, and an unknown account (which must cost the same).
//! Run: `cargo bench --bench pins` (prints figures, no pass or fail).

use std::sync::Arc;
use std::time::Instant;

use ivr::directory::local::{hash_pin, LocalDirectory, LocalUser};
use ivr::directory::pin_key::PinKey;
use ivr::directory::Directory;

fn user(account: &str, pin_hash: String) -> LocalUser {
    LocalUser {
        account: account.into(),
        pin_hash,
        greeting: None,
        balance: None,
        greeting_text: None,
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("ivr-bench-pins-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = Arc::new(PinKey::load(None, &dir.join("pin.key")).unwrap());
    let keyed = user("12345", key.hash("12345", "2468"));
    let legacy = user("777", hash_pin("1111").unwrap());
    // One PIN-check thread: Argon2id on one core.
    let directory = LocalDirectory::new(vec![keyed, legacy], 1, key);
    runtime.block_on(async {
        for (what, account, pin, n) in [
            ("keyed, right PIN", "12345", "2468", 200_000),
            ("keyed, wrong PIN", "12345", "0000", 200_000),
            ("unknown account", "99999", "2468", 200_000),
            ("Argon2id (legacy), wrong PIN", "777", "0000", 50),
        ] {
            let start = Instant::now();
            for _ in 0..n {
                std::hint::black_box(directory.verify(account, pin, "bench").await);
            }
            let each = start.elapsed() / n;
            let per_second = 1.0 / each.as_secs_f64();
            println!(
                "{what:30} {:>9.2} us per login, {per_second:>10.0} logins/s on one core",
                each.as_secs_f64() * 1e6
            );
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
}

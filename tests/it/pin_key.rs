//! Keyed PIN hashes in the running server: the first start makes the PIN key (mode 0600, said
//! in the log), a good login replaces the account's legacy Argon2id hash in the users file by a
//! keyed one, and `ivr users add` writes keyed hashes.

use crate::support;

use std::time::Duration;

use support::raw::RawPhone;
use support::Ivr;

#[test]
fn the_key_is_made_on_first_start_and_a_good_login_upgrades_the_hash() {
    let ivr = Ivr::start("pin-key", &[]);
    ivr.wait_for_log("made a new PIN key", Duration::from_secs(1));
    let key_file = ivr.dir.0.join("pin.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key is the owner's alone");
    }
    let users = ivr.dir.0.join("users.toml");
    let before = std::fs::read_to_string(&users).unwrap();
    assert!(
        before.contains("$argon2id$"),
        "the shipped users are legacy hashes"
    );

    let phone = RawPhone::new("127.0.0.1", &ivr);
    let call = phone.call("pin-1").expect("answered");
    std::thread::sleep(Duration::from_millis(500));
    phone.press(call.rtp_port, "24680#1357#");
    ivr.wait_for_log("caller verified", Duration::from_secs(10));
    ivr.wait_for_log("PIN hash upgraded to a keyed one", Duration::from_secs(5));
    phone.bye(&call);
    let after = std::fs::read_to_string(&users).unwrap();
    assert!(after.contains("$ivr-hmac-sha256$"), "{after}");
    assert_eq!(
        after.matches("$ivr-hmac-sha256$").count(),
        1,
        "only the account that logged in"
    );
}

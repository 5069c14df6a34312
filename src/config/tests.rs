//! Settings: defaults, checks at load, and secrets kept out of files and messages.

use super::*;
use crate::media::codec::Codec;

fn with_auth0(domain: &str) -> Settings {
    let mut s = Settings::default();
    s.directory.backend = Backend::Auth0;
    s.auth0.domain = domain.into();
    s.auth0.client_id = "id".into();
    s
}

#[test]
fn auth0_domain_is_https_or_loopback_http() {
    assert!(with_auth0("https://tenant.auth0.com").validate().is_ok());
    assert!(with_auth0("http://127.0.0.1:8080").validate().is_ok());
    assert!(with_auth0("http://localhost:8080/").validate().is_ok());
    assert!(with_auth0("http://[::1]:8080").validate().is_ok());
    for bad in [
        "http://tenant.auth0.com",
        "http://10.0.0.1",
        "ftp://x",
        "tenant.auth0.com",
        "https://",
    ] {
        assert!(with_auth0(bad).validate().is_err(), "{bad}");
    }
}

#[test]
fn a_client_secret_in_the_settings_file_is_refused() {
    let dir = crate::testing::TempDir::new("config");
    let path = dir.path().join("ivr.toml");
    std::fs::write(&path, "[auth0]\nclient_secret = \"oops\"\n").unwrap();
    let err = Settings::load(&path).unwrap_err().to_string();
    assert!(err.contains("IVR_AUTH0__CLIENT_SECRET"), "{err}");
    assert!(
        !err.contains("oops"),
        "the refusal must not echo the secret: {err}"
    );
    let trunk =
        "[trunk]\nregistrar = \"sip:sip.example.net\"\nusername = \"ivr\"\npassword = \"oops\"\n";
    std::fs::write(&path, trunk).unwrap();
    let err = Settings::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("IVR_TRUNK__PASSWORD") && !err.contains("oops"),
        "{err}"
    );
}

#[test]
fn secrets_are_never_shown_by_debug() {
    let secret = Secret::new("hunter2".into());
    assert_eq!(format!("{secret:?}"), "***");
    let mut s = Settings::default();
    s.auth0.client_secret = Some(secret);
    assert!(!format!("{s:?}").contains("hunter2"));
}

#[test]
fn bad_codecs_ports_and_addresses_are_refused_with_their_key() {
    let dir = crate::testing::TempDir::new("typed");
    let path = dir.path().join("ivr.toml");
    for (text, key) in [
        ("[sip]\ncodecs = [\"PCMU\", \"G729\"]\n", "codecs"),
        ("[rtp]\nports = \"30001-30001\"\n", "ports"),
        ("[rtp]\nports = \"lots\"\n", "ports"),
        ("[sip]\npublic_addr = \"ivr.example\"\n", "public_addr"),
        ("[rtp]\nencryption = \"always\"\n", "encryption"),
        ("[sip]\nallow = [\"trunk.example\"]\n", "sip.allow"),
        ("[rtp]\nencryption = \"mandatory\"\n", "tls_listen"),
    ] {
        std::fs::write(&path, text).unwrap();
        let err = format!("{:#}", Settings::load(&path).unwrap_err());
        assert!(err.contains(key), "{text}: {err}");
    }
    std::fs::write(
        &path,
        "[rtp]\nports = \"30001-30010\"\n[sip]\npublic_addr = \"192.0.2.7\"\ncodecs = [\"pcma\"]\n",
    )
    .unwrap();
    let settings = Settings::load(&path).unwrap();
    assert_eq!(
        settings.rtp.ports,
        PortRange {
            first: 30002,
            last: 30010
        }
    );
    assert_eq!(settings.public_ip(), IpAddr::from([192, 0, 2, 7]));
    assert_eq!(settings.sip.codecs, [Codec::Pcma]);
}

#[test]
fn a_transfer_password_comes_from_the_environment_or_a_file_never_the_settings_file() {
    let dir = crate::testing::TempDir::new("config");
    let path = dir.path().join("ivr.toml");
    std::fs::write(
        &path,
        "[transfer]\nusername = \"ivr\"\npassword = \"oops\"\n",
    )
    .unwrap();
    let err = Settings::load(&path).unwrap_err().to_string();
    assert!(err.contains("IVR_TRANSFER__PASSWORD"), "{err}");
    assert!(!err.contains("oops"), "{err}");
    let secret = dir.path().join("transfer.secret");
    std::fs::write(&secret, "b3ridge\n").unwrap();
    let settings = format!(
        "[transfer]\nusername = \"ivr\"\npassword_file = \"{}\"\n",
        secret.display()
    );
    std::fs::write(&path, settings).unwrap();
    let credentials = Settings::load(&path)
        .unwrap()
        .transfer_credentials()
        .unwrap()
        .unwrap();
    assert_eq!(credentials.username, "ivr");
    assert_eq!(credentials.password, "b3ridge");
    assert!(!format!("{credentials:?}").contains("b3ridge"));
}

#[test]
fn signalling_takes_a_quarter_of_the_cores_unless_told() {
    let mut sip = SipSettings::default();
    let threads: Vec<usize> = [1, 2, 4, 8, 16]
        .into_iter()
        .map(|cores| sip.runtime_threads_for(cores))
        .collect();
    assert_eq!(threads, [1, 1, 1, 2, 4]);
    sip.threads = 3;
    assert_eq!(sip.runtime_threads_for(2), 3);
}

#[test]
fn a_public_address_open_to_everyone_is_refused_unless_the_operator_says_so() {
    let mut s = Settings::default();
    // Data only: nothing is sent to this address.
    s.sip.listen = "8.8.8.8:5060".parse().unwrap();
    let error = s.validate().unwrap_err().to_string();
    assert!(error.contains("sip.open_to_internet"), "{error}");
    s.sip.open_to_internet = true;
    s.validate().unwrap();
    s.sip.open_to_internet = false;
    s.sip.allow = vec!["198.51.100.0/24".into()];
    s.validate().unwrap();
    // Loopback and private addresses are not the internet.
    for listen in ["127.0.0.1:5060", "10.1.2.3:5060", "192.168.1.2:5060"] {
        let mut s = Settings::default();
        s.sip.listen = listen.parse().unwrap();
        s.validate().unwrap();
    }
}

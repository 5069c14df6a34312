//! A real registrar: Kamailio (registrar, usrloc, auth, auth_db over db_text) challenges the
//! IVR's REGISTER with digest, grants 10 s so the IVR refreshes, relays a call for the IVR's
//! address of record to the registered contact, and drops the binding when the IVR stops.

use crate::support;

use std::time::{Duration, Instant};

use support::baresip::{self, Secure};
use support::kamailio::Kamailio;
use support::{free_port, project_dir, Ivr, TempDir};

/// Kamailio as registrar: its UDP and TLS ports and the certificate TLS presents.
struct Registrar {
    kamailio: Kamailio,
    port: u16,
    tls_port: u16,
    certificate: std::path::PathBuf,
}

impl Registrar {
    fn start(dir: &TempDir) -> Registrar {
        let port = free_port();
        let db = dir.0.join("db");
        std::fs::create_dir_all(&db).unwrap();
        std::fs::write(
            db.join("version"),
            "id(int,auto) table_name(string) table_version(int) \n0:subscriber:7\n0:location:9\n",
        )
        .unwrap();
        std::fs::write(
            db.join("subscriber"),
            "id(int,auto) username(string) domain(string) password(string) ha1(string) ha1b(string) \n\
             1:ivr1:127.0.0.1:s3cret:7bb6903ae18cfb03305bdca6734e7975:af6564a634e905e668a6a9f369ade735\n",
        )
        .unwrap();
        let tls_port = free_port();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let certificate = dir.0.join("kamailio.pem");
        std::fs::write(&certificate, cert.pem()).unwrap();
        std::fs::write(dir.0.join("kamailio.key"), key.serialize_pem()).unwrap();
        let tls_cfg = dir.0.join("tls.cfg");
        std::fs::write(
            &tls_cfg,
            format!(
                "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n\
                 private_key = {}\ncertificate = {}\n",
                dir.0.join("kamailio.key").display(),
                certificate.display()
            ),
        )
        .unwrap();
        let cfg = std::fs::read_to_string(project_dir().join("tests/kamailio/registrar.cfg"))
            .unwrap()
            .replace("@PORT@", &port.to_string())
            .replace("@TLS_PORT@", &tls_port.to_string())
            .replace("@TLS_CFG@", tls_cfg.to_str().unwrap())
            .replace("@DBDIR@", db.to_str().unwrap());
        Registrar {
            kamailio: Kamailio::start(dir, &cfg),
            port,
            tls_port,
            certificate,
        }
    }

    /// The contacts usrloc holds.
    fn bindings(&self) -> String {
        self.kamailio.rpc(&["ul.dump"]).unwrap_or_default()
    }
}

fn log_of(registrar: &Registrar) -> String {
    registrar.kamailio.log_text()
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn kamailio_registers_the_ivr_refreshes_it_routes_a_call_to_it_and_forgets_it_on_stop() {
    let dir = TempDir::new("kamailio-registrar");
    let kamailio = Registrar::start(&dir);
    let mut ivr = Ivr::start(
        "kamailio-registered",
        &[
            (
                "IVR_TRUNK__REGISTRAR",
                &format!("sip:127.0.0.1:{}", kamailio.port),
            ),
            ("IVR_TRUNK__USERNAME", "ivr1"),
            ("IVR_TRUNK__PASSWORD", "s3cret"),
            ("IVR_SHUTDOWN__GRACE_S", "1"),
            // Only the registrar may call in: the call below must come through Kamailio.
            ("IVR_SIP__ALLOW", r#"["192.0.2.1"]"#),
        ],
    );
    ivr.wait_for_line(
        &["status=\"registered\"", "registered for 10 s"],
        Duration::from_secs(5),
    );
    let contact = format!("sip:ivr1@{}", ivr.addr());
    assert!(
        kamailio.bindings().contains(&contact),
        "usrloc holds the IVR's contact:\n{}",
        kamailio.bindings()
    );
    // The grant is 10 s: the refresh comes at 8 s, answering a fresh challenge.
    wait_until("a refresh", Duration::from_secs(12), || {
        log_of(&kamailio)
            .matches("REGISTER by ivr1 authorised")
            .count()
            >= 2
    });

    // A caller dials the IVR's address of record at Kamailio, which relays to the contact.
    let phone_dir = TempDir::new("kamailio-caller");
    let target = format!("sip:ivr1@127.0.0.1:{}", kamailio.port);
    let (mut phone, _) = baresip::call(&phone_dir.0, &target, 10, &Secure::default());
    phone.wait().unwrap();
    ivr.wait_for_line(
        &[
            "call offered",
            &format!("source=127.0.0.1:{}", kamailio.port),
        ],
        Duration::from_secs(1),
    );
    ivr.wait_for_log("reason=\"caller-bye\"", Duration::from_secs(5));
    let heard = baresip::heard(&phone_dir.0).expect("the caller recorded the call");
    let (samples, rate) = support::audio::read_recording(&heard);
    assert!(
        support::audio::active_span(&samples, rate) > 3.0,
        "the caller heard the prompts"
    );

    ivr.signal("TERM");
    assert!(
        ivr.wait_exit(Duration::from_secs(10)).is_some(),
        "the IVR stops"
    );
    assert!(ivr.log_text().contains("status=\"unregistered\""));
    assert!(
        !kamailio.bindings().contains(&contact),
        "Expires: 0 removed the binding:\n{}",
        kamailio.bindings()
    );
}

#[test]
fn over_tls_the_ivr_registers_keeps_its_flow_and_takes_a_call_down_it() {
    let dir = TempDir::new("kamailio-tls");
    let kamailio = Registrar::start(&dir);
    let mut ivr = Ivr::start(
        "kamailio-tls-registered",
        &[
            (
                "IVR_TRUNK__REGISTRAR",
                &format!("sips:127.0.0.1:{}", kamailio.tls_port),
            ),
            ("IVR_TRUNK__USERNAME", "ivr1"),
            ("IVR_TRUNK__PASSWORD", "s3cret"),
            ("IVR_TLS__CA_FILE", kamailio.certificate.to_str().unwrap()),
            ("IVR_SHUTDOWN__GRACE_S", "1"),
            ("IVR_SIP__ALLOW", r#"["192.0.2.1"]"#),
        ],
    );
    ivr.wait_for_line(
        &["status=\"registered\"", "registered for 10 s"],
        Duration::from_secs(5),
    );
    let log = log_of(&kamailio);
    assert!(
        log.contains("REGISTER by ivr1 authorised over tls"),
        "{log}"
    );
    let bindings = kamailio.bindings();
    assert!(
        bindings.contains("+sip.instance") || bindings.contains("urn:uuid:"),
        "{bindings}"
    );
    // The refresh goes down the same connection.
    wait_until("a refresh over TLS", Duration::from_secs(12), || {
        log_of(&kamailio).matches("authorised over tls").count() >= 2
    });
    // A caller over UDP reaches the IVR through Kamailio, which relays down the TLS flow.
    let phone_dir = TempDir::new("kamailio-tls-caller");
    let target = format!("sip:ivr1@127.0.0.1:{}", kamailio.port);
    let (mut phone, _) = baresip::call(&phone_dir.0, &target, 10, &Secure::default());
    phone.wait().unwrap();
    ivr.wait_for_line(&["call offered", "transport=Tls"], Duration::from_secs(1));
    ivr.wait_for_log("reason=\"caller-bye\"", Duration::from_secs(5));
    ivr.signal("TERM");
    assert!(
        ivr.wait_exit(Duration::from_secs(10)).is_some(),
        "the IVR stops"
    );
    assert!(ivr.log_text().contains("status=\"unregistered\""));
}

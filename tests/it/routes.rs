//! One IVR behind several numbers: each dialled number reaches its own flow, and a number no
//! route names gets the default flow or, when the operator says so, 404.

use crate::support;

use std::time::Duration;

use support::raw::{status, RawPhone};
use support::{project_dir, Ivr, TempDir};

/// A second flow: the shipped one, opening with another prompt.
fn sales_flow(dir: &TempDir) -> String {
    let shipped = std::fs::read_to_string(project_dir().join("sip-config/flow.toml")).unwrap();
    let sales = shipped.replace("welcome = \"welcome\"", "welcome = \"payments\"");
    assert_ne!(sales, shipped);
    let path = dir.0.join("sales.toml");
    std::fs::write(&path, sales).unwrap();
    path.display().to_string()
}

fn dial(ivr: &Ivr, number: &str, call_id: &str) -> u16 {
    let mut phone = RawPhone::new("127.0.0.1", ivr);
    phone.dialled = number.into();
    match phone.call(call_id) {
        Ok(call) => {
            phone.bye(&call);
            200
        }
        Err(refusal) => status(&refusal),
    }
}

#[test]
fn each_number_reaches_its_flow_and_unknown_ones_the_default() {
    let dir = TempDir::new("routes");
    let sales = sales_flow(&dir);
    let routes = format!("{{\"+15551230001\" = \"{sales}\", \"2000\" = \"sip-config/flow.toml\"}}");
    let ivr = Ivr::start("routes", &[("IVR_FLOW__ROUTES", &routes)]);
    // The trunk sends the DID without its +: still the sales number.
    assert_eq!(dial(&ivr, "15551230001", "r1"), 200);
    ivr.wait_for_line(
        &["routed", "call_id=r1", "sales.toml"],
        Duration::from_secs(2),
    );
    assert_eq!(dial(&ivr, "2000", "r2"), 200);
    ivr.wait_for_line(
        &["routed", "call_id=r2", "sip-config/flow.toml"],
        Duration::from_secs(2),
    );
    assert_eq!(dial(&ivr, "999", "r3"), 200, "the default flow");
    ivr.wait_for_line(
        &["routed", "call_id=r3", "sip-config/flow.toml"],
        Duration::from_secs(2),
    );
}

#[test]
fn unknown_numbers_get_404_when_the_operator_rejects_them() {
    let ivr = Ivr::start(
        "routes-reject",
        &[
            ("IVR_FLOW__ROUTES", "{\"2000\" = \"sip-config/flow.toml\"}"),
            ("IVR_FLOW__UNKNOWN", "reject"),
        ],
    );
    assert_eq!(dial(&ivr, "999", "x1"), 404);
    ivr.wait_for_line(
        &["no route for the number dialled", "dialled=999"],
        Duration::from_secs(2),
    );
    assert_eq!(dial(&ivr, "2000", "x2"), 200);
}

#[test]
fn check_config_loads_every_routes_flow() {
    let dir = TempDir::new("routes-check");
    let broken = dir.0.join("broken.toml");
    std::fs::write(&broken, "welcome = \"no_such_prompt\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ivr"))
        .current_dir(project_dir())
        .arg("check-config")
        .env(
            "IVR_FLOW__ROUTES",
            format!("{{\"2000\" = \"{}\"}}", broken.display()),
        )
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a broken route's flow fails the check"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.toml"), "{err}");
}

//! Asking the directory (Auth0 or local, the lockout in front) whether an account and PIN
//! match: the one place that times it, counts it, notes it for the call record and logs it,
//! for the login and for `verify` steps alike.

use std::sync::Mutex;

use super::{note, CallingParty, FlowEnv, Report};
use crate::directory::{Masked, Verification};
use crate::metrics::{Outcome, METRICS};

/// The directory's answer; the PIN is dropped here, once asked.
pub(super) async fn check(
    call_id: &str,
    env: &FlowEnv,
    account: &str,
    pin: String,
    caller: &CallingParty,
    report: &Mutex<Report>,
) -> Verification {
    let asked = std::time::Instant::now();
    let verification = env
        .directory
        .verify(account, &pin, &caller.lockout_key)
        .await;
    drop(pin);
    METRICS
        .directory_seconds
        .observe(asked.elapsed().as_secs_f64());
    let outcome = match &verification {
        Verification::Verified(_) => "verified",
        Verification::WrongCredentials => "wrong_credentials",
        Verification::Locked => "locked",
        Verification::Unavailable(_) => "unavailable",
    };
    METRICS
        .verifications
        .get_or_create(&Outcome { outcome })
        .inc();
    note(report, |r| {
        r.verification = Some(outcome);
        r.account = Some(Masked(account).to_string());
    });
    let masked = Masked(account);
    match &verification {
        Verification::Verified(user) => {
            let shown = user.user_id.replace(account, &masked.to_string());
            tracing::info!(%call_id, user = %shown, "caller verified");
        }
        Verification::WrongCredentials => {
            tracing::info!(%call_id, account = %masked, "wrong account number or PIN")
        }
        Verification::Locked => tracing::info!(%call_id, account = %masked, "account locked"),
        Verification::Unavailable(reason) => {
            tracing::warn!(%call_id, %reason, "directory unavailable")
        }
    }
    verification
}

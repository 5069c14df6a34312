//! The call flow. Until the conversation lands this is the opening of the seed's script: the
//! welcome, the account-number question read up to `#`, then goodbye.

use std::time::Duration;

use super::call::{Call, Collect, Gone};

/// Prompts the flow cannot run without; start-up fails naming any that is missing.
pub const REQUIRED_PROMPTS: &[&str] = &["welcome", "enter_account", "goodbye"];

pub async fn run(mut call: Call) {
    let result: Result<(), Gone> = async {
        call.play("welcome", true).await?;
        let account = call
            .collect(&Collect {
                prompt: Some("enter_account"),
                max_digits: 10,
                terminator: Some('#'),
                first_timeout: Duration::from_secs(10),
                inter_timeout: Duration::from_secs(5),
                interruptible: true,
                secret: false,
            })
            .await?;
        tracing::info!(call_id = %call.call_id, digits = %account.digits, ended = ?account.ended, "account number entered");
        call.say("goodbye").await?;
        call.hangup();
        call.wait().await
    }
    .await;
    if result.is_err() {
        tracing::debug!(call_id = %call.call_id, "flow stopped: call gone");
    }
}

//! The call flow. Until the conversation lands this is the opening of the seed's script: the
//! welcome, then the first question, then waiting for the caller.

use super::call::{Call, Gone};

/// Prompts the flow cannot run without; start-up fails naming any that is missing.
pub const REQUIRED_PROMPTS: &[&str] = &["welcome", "enter_account"];

pub async fn run(mut call: Call) {
    let result: Result<(), Gone> = async {
        call.say("welcome").await?;
        call.say("enter_account").await?;
        call.wait().await
    }
    .await;
    if result.is_err() {
        tracing::debug!(call_id = %call.call_id, "flow stopped: call gone");
    }
}

//! Who the caller is: the `Directory` trait the IVR flow verifies callers through, and its
//! backends. The flow sees nothing but `Verification`.

pub mod amount;
pub mod auth0;
pub mod breaker;
pub mod local;
pub mod lockout;
pub mod pin_key;
pub mod shared_lockout;

pub use amount::Amount;

/// An account number as logs and call records show it: all but the last two digits hidden.
#[derive(Debug, Clone, Copy)]
pub struct Masked<'a>(pub &'a str);

impl std::fmt::Display for Masked<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = self.0.chars().count().saturating_sub(2);
        for (i, c) in self.0.chars().enumerate() {
            let c = if i < shown { '*' } else { c };
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

use std::future::Future;
use std::pin::Pin;

/// A verified caller, as much as the flow needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub user_id: String,
    /// A recorded-name prompt (under `prompts/`), played after "Welcome" when it exists.
    pub greeting: Option<String>,
    /// Spoken by the menu.
    pub balance: Option<Amount>,
    /// A name to say after "Welcome" when no recorded greeting exists (personal data: never
    /// logged).
    pub greeting_text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    Verified(User),
    WrongCredentials,
    Locked,
    /// The backend could not answer; the reason is for the log, never for the caller.
    Unavailable(String),
}

pub type VerifyFuture<'a> = Pin<Box<dyn Future<Output = Verification> + Send + 'a>>;

pub trait Directory: Send + Sync {
    /// Checks an account number and PIN; `caller` is the caller ID, for limits and logs.
    fn verify<'a>(&'a self, account: &'a str, pin: &'a str, caller: &'a str) -> VerifyFuture<'a>;

    /// Whether the backend answered the last time it was asked (for `/health/ready`).
    fn reachable(&self) -> bool {
        true
    }
}

/// Account numbers are 1–10 digits; nothing else reaches a backend.
pub fn valid_account(account: &str) -> bool {
    (1..=10).contains(&account.len()) && account.bytes().all(|b| b.is_ascii_digit())
}

pub fn valid_pin(pin: &str) -> bool {
    (4..=12).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit())
}

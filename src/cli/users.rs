//! `ivr users add|set-pin|remove`: edits the local directory safely. The PIN is read from
//! standard input (never an argument, so it stays out of shell history and `ps`), stored only
//! as a hash keyed with the server's PIN key, and the file is replaced atomically with mode 0600.

use std::io::BufRead;
use std::path::Path;

use anyhow::{bail, Context, Result};

use ivr::directory::local::{LocalUser, UsersFile};
use ivr::directory::pin_key::PinKey;
use ivr::directory::{valid_account, valid_pin, Amount};
use ivr::media::speech::clean_text;

#[derive(clap::Subcommand)]
pub enum Edit {
    /// Add an account; its PIN is read from standard input.
    Add {
        account: String,
        /// Prompt name of a recorded greeting, e.g. greetings/12345.
        #[arg(long)]
        greeting: Option<String>,
        #[arg(long)]
        balance: Option<Amount>,
    },
    /// Change an account's PIN (read from standard input).
    SetPin {
        account: String,
    },
    /// Set the name spoken after "Welcome" (text-to-speech) when no recorded greeting exists;
    /// "" removes it.
    SetGreeting {
        account: String,
        text: String,
    },
    Remove {
        account: String,
    },
}

pub fn run(path: &Path, key: &PinKey, edit: Edit) -> Result<()> {
    let mut file = if path.exists() {
        UsersFile::read(path)?
    } else {
        UsersFile::default()
    };
    match edit {
        Edit::Add {
            account,
            greeting,
            balance,
        } => {
            check_account(&account)?;
            if file.users.iter().any(|u| u.account == account) {
                bail!("account {account} already exists (use set-pin)");
            }
            let pin_hash = key.hash(&account, &read_pin()?);
            file.users.push(LocalUser {
                account,
                pin_hash,
                greeting,
                balance,
                greeting_text: None,
            });
        }
        Edit::SetGreeting { account, text } => {
            let user = file
                .users
                .iter_mut()
                .find(|u| u.account == account)
                .with_context(|| format!("no account {account}"))?;
            user.greeting_text = clean_text(&text);
        }
        Edit::SetPin { account } => {
            let pin_hash = key.hash(&account, &read_pin()?);
            let user = file
                .users
                .iter_mut()
                .find(|u| u.account == account)
                .with_context(|| format!("no account {account}"))?;
            user.pin_hash = pin_hash;
        }
        Edit::Remove { account } => {
            let before = file.users.len();
            file.users.retain(|u| u.account != account);
            if file.users.len() == before {
                bail!("no account {account}");
            }
        }
    }
    file.write(path)
}

fn check_account(account: &str) -> Result<()> {
    if !valid_account(account) {
        bail!("account numbers are 1-10 digits");
    }
    Ok(())
}

fn read_pin() -> Result<String> {
    eprint!("PIN (4-12 digits): ");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let pin = line.trim().to_string();
    if !valid_pin(&pin) {
        bail!("a PIN is 4-12 digits");
    }
    Ok(pin)
}

//! A call's variables: what steps collected, set or got back from an API, and the read-only
//! `call.*` and `user.*` the engine fills in. Secrets (a collected PIN) are kept apart so
//! nothing can print them by accident.

use std::collections::{HashMap, HashSet};
use std::fmt;

/// The longest value kept: an API's reply cannot make a call hold more than this per name.
pub const MAX_VALUE: usize = 1024;
/// The most names one call may hold.
pub const MAX_NAMES: usize = 256;

#[derive(Default, Clone)]
pub struct Vars {
    values: HashMap<String, String>,
    secret: HashSet<String>,
}

impl Vars {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Every name and value but the secrets.
    pub fn public(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values
            .iter()
            .filter(|(k, _)| !self.secret.contains(*k))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Every name and value, sorted, a secret's value as `****`: what may be shown.
    pub fn shown(&self) -> Vec<(String, String)> {
        let mut all: Vec<(String, String)> = self
            .values
            .iter()
            .map(|(k, v)| {
                let v = if self.secret.contains(k) { "****" } else { v };
                (k.clone(), v.to_string())
            })
            .collect();
        all.sort();
        all
    }

    pub fn is_secret(&self, name: &str) -> bool {
        self.secret.contains(name)
    }

    /// Sets `name` (a value over `MAX_VALUE` is cut at a character boundary; past
    /// `MAX_NAMES` a new name is dropped).
    pub fn set(&mut self, name: &str, value: &str) {
        self.secret.remove(name);
        self.put(name, value);
    }

    pub fn set_secret(&mut self, name: &str, value: &str) {
        if self.put(name, value) {
            self.secret.insert(name.to_string());
        }
    }

    fn put(&mut self, name: &str, value: &str) -> bool {
        if !self.values.contains_key(name) && self.values.len() >= MAX_NAMES {
            return false;
        }
        let mut end = value.len().min(MAX_VALUE);
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        self.values
            .insert(name.to_string(), value[..end].to_string());
        true
    }
}

/// Secrets show as `***`: a `{:?}` in a log line can never print a PIN.
impl fmt::Debug for Vars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<_> = self.values.iter().collect();
        names.sort();
        f.debug_map()
            .entries(names.into_iter().map(|(k, v)| {
                let shown = if self.secret.contains(k) {
                    "***"
                } else {
                    v.as_str()
                };
                (k, shown)
            }))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_shows_in_debug_and_values_are_capped() {
        let mut vars = Vars::default();
        vars.set_secret("pin", "4321");
        vars.set("cow", &"9".repeat(5000));
        let shown = format!("{vars:?}");
        assert!(!shown.contains("4321") && shown.contains("***"), "{shown}");
        assert_eq!(vars.get("cow").map(str::len), Some(MAX_VALUE));
        vars.set("pin", "public now");
        assert!(!vars.is_secret("pin"));
        for i in 0..MAX_NAMES * 2 {
            vars.set(&format!("v{i}"), "x");
        }
        assert!(vars.get(&format!("v{}", MAX_NAMES * 2 - 1)).is_none());
    }
}

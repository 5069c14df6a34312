//! `{{name}}` in a flow's texts: the names a text reads (checked at load) and the text with
//! the call's values put in. A name no step has set reads as the empty string; a secret never
//! reads at all unless the one place that may send it says so.

use super::vars::Vars;

/// The names `text` reads, in order, or why its braces are broken.
pub fn names(text: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| format!("{text:?}: a {{{{ without its }}}}"))?;
        let name = after[..close].trim();
        if !valid_name(name) {
            return Err(format!("{text:?}: {name:?} is not a variable name"));
        }
        out.push(name);
        rest = &after[close + 2..];
    }
    Ok(out)
}

/// A variable's name: letters, digits and `_`, with `.` between parts (`call.from`).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.split('.').all(|part| {
            part.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// `text` with each `{{name}}` replaced by its value; a secret only when `secrets_allowed`
/// names it (load has refused every other place a secret could be read).
pub fn render(text: &str, vars: &Vars, secrets_allowed: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            rest = &rest[open..];
            break;
        };
        let name = after[..close].trim();
        if !vars.is_secret(name) || secrets_allowed.iter().any(|s| s == name) {
            out.push_str(vars.get(name).unwrap_or_default());
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_found_and_broken_braces_refused() {
        assert_eq!(
            names("cow {{ cow }} from {{call.from}}").unwrap(),
            ["cow", "call.from"]
        );
        assert!(names("no braces").unwrap().is_empty());
        assert!(names("{{cow").is_err());
        assert!(names("{{ two words }}").is_err());
        assert!(names("{{1abc}}").is_err());
    }

    #[test]
    fn values_go_in_and_secrets_stay_out_unless_allowed() {
        let mut vars = Vars::default();
        vars.set("cow", "12345");
        vars.set_secret("pin", "4321");
        assert_eq!(
            render("cow {{cow}}, {{nothing}}!", &vars, &[]),
            "cow 12345, !"
        );
        assert_eq!(render("pin {{pin}}", &vars, &[]), "pin ");
        assert_eq!(render("pin {{pin}}", &vars, &["pin".into()]), "pin 4321");
        assert_eq!(render("open {{cow", &vars, &[]), "open {{cow");
    }
}

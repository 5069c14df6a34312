//! The shape of a From, To or Contact value (RFC 3261 §25.1 `name-addr` / `addr-spec` with
//! parameters), checked before anything is read out of it: what RFC 4475 says a parser must
//! refuse with 400 instead of guessing at.

/// Why `value` is not a well-formed name-addr or addr-spec with parameters.
pub(super) fn check(value: &str) -> Result<(), &'static str> {
    let value = value.trim();
    let params = match outside_quotes(value, '<')? {
        Some(lt) => {
            display_name(value[..lt].trim())?;
            let gt = value[lt..].find('>').ok_or("a '<' without its '>'")? + lt;
            let inner = &value[lt + 1..gt];
            if inner.is_empty()
                || inner.starts_with(char::is_whitespace)
                || inner.ends_with(char::is_whitespace)
            {
                return Err("spaces inside the angle brackets of an address");
            }
            &value[gt + 1..]
        }
        None => {
            let (uri, params) = value.split_at(value.find(';').unwrap_or(value.len()));
            // In an addr-spec, `?` and `,` would be read as the header's own syntax (§20).
            if uri.is_empty() || uri.contains(['?', ',', ' ', '\t', '"']) {
                return Err("an address with headers or spaces must be in angle brackets");
            }
            params
        }
    };
    check_params(params.trim())
}

/// The index of `wanted` outside quoted strings, and whether every quote is closed.
fn outside_quotes(value: &str, wanted: char) -> Result<Option<usize>, &'static str> {
    let (mut quoted, mut escaped, mut found) = (false, false, None);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == wanted && !quoted && found.is_none() => found = Some(i),
            _ => {}
        }
    }
    if quoted {
        return Err("an unterminated quoted string");
    }
    Ok(found)
}

/// A display name is a quoted string or words of token characters (§25.1 `display-name`).
fn display_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || (name.starts_with('"') && name.ends_with('"') && name.len() > 1) {
        return Ok(());
    }
    let token = |c: char| c.is_ascii_alphanumeric() || "-.!%*_+`'~ \t".contains(c);
    if name.chars().all(token) {
        Ok(())
    } else {
        Err("a display name with separators must be quoted")
    }
}

fn check_params(params: &str) -> Result<(), &'static str> {
    if params.is_empty() {
        return Ok(());
    }
    let rest = params
        .strip_prefix(';')
        .ok_or("text after an address that is not a parameter")?;
    if rest
        .split(';')
        .any(|p| p.trim().is_empty() || p.trim().starts_with('='))
    {
        return Err("an empty parameter");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn the_forms_sip_allows_pass() {
        for value in [
            "sip:a@h",
            "sip:a@h;tag=1",
            "<sip:a@h?Route=%3Csip:x%3E>;tag=1",
            "\"Caller \\\\\\\"\" <sip:a@h>;tag=9",
            "caller<sip:a@h>;tag=3",
            "token1~` token2'+_ <sip:a@h>;p=\"q;r\"",
            "Joe Bob Briggs <urn:ipaddr:122.1.2.3>",
            "isbn:2983792873",
            "<sip:a@h;lr>;expires=60;+sip.instance=\"<urn:uuid:1>\"",
        ] {
            assert_eq!(check(value), Ok(()), "{value}");
        }
    }

    #[test]
    fn what_rfc_4475_calls_malformed_is_refused() {
        for value in [
            "\"Mr. J. User <sip:j.user@h>",
            "Bell, Alexander <sip:a@h>;tag=43",
            "\"Watson\" < sip:t@h >",
            "sip:user@example.com?Route=%3Csip:x%3E",
            "\"Joe\" <sip:joe@h>;;;;",
            "sip:a@h;tag=1;",
            "<sip:a@h",
            "<sip:a@h> junk",
        ] {
            assert!(check(value).is_err(), "{value}");
        }
    }
}

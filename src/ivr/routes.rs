//! Which flow answers which number: one system behind several phone numbers (DIDs), each with
//! its own menus. A call is routed by the user part of its Request-URI, else of its To (trunks
//! differ in which one carries the DID), compared with and without a leading `+`; a number no
//! route names goes to the default flow, or is refused when the operator says so.

use std::collections::HashMap;

/// Flows (or anything else) by dialled number.
#[derive(Debug)]
pub struct Routes<T> {
    numbers: HashMap<String, T>,
    default: Option<T>,
}

impl<T> Routes<T> {
    /// `default`: what unknown numbers get; `None` refuses them.
    pub fn new(numbers: impl IntoIterator<Item = (String, T)>, default: Option<T>) -> Routes<T> {
        Routes {
            numbers: numbers
                .into_iter()
                .map(|(number, flow)| (canonical(&number).to_string(), flow))
                .collect(),
            default,
        }
    }

    /// The flow for a call to `uri_user` (the Request-URI's user), or to `to_user` (the To's).
    pub fn pick(&self, uri_user: &str, to_user: &str) -> Option<&T> {
        [uri_user, to_user]
            .into_iter()
            .find_map(|user| self.numbers.get(canonical(user)))
            .or(self.default.as_ref())
    }
}

/// A number as routes compare it: `+15551230001` and `15551230001` are one number.
fn canonical(number: &str) -> &str {
    number.trim().strip_prefix('+').unwrap_or(number.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_with_or_without_plus_by_request_uri_then_to() {
        let routes = Routes::new(
            [
                ("+15551230001".to_string(), "sales"),
                ("2000".to_string(), "support"),
            ],
            Some("main"),
        );
        assert_eq!(routes.pick("15551230001", ""), Some(&"sales"));
        assert_eq!(routes.pick("+15551230001", ""), Some(&"sales"));
        assert_eq!(
            routes.pick("ivr", "2000"),
            Some(&"support"),
            "the DID in To"
        );
        assert_eq!(
            routes.pick("2000", "+15551230001"),
            Some(&"support"),
            "Request-URI first"
        );
        assert_eq!(routes.pick("999", "ivr"), Some(&"main"));
        let strict = Routes::new([("2000".to_string(), "support")], None);
        assert_eq!(strict.pick("999", "998"), None, "refused: 404");
    }
}

//! The server side of digest: the `Authorization` (or `Proxy-Authorization`) a client sends
//! back, and the response it should carry for a user's HA1.

use subtle::ConstantTimeEq;

use super::{params, Algorithm};

/// One `Digest ...` credentials value. Only `qop=auth` is taken: without `nc` and `cnonce` a
/// captured request could be replayed for as long as its nonce lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Algorithm,
    pub cnonce: String,
    pub nc: u32,
}

/// Longest value of any one field we keep; real ones are far shorter.
const MAX_FIELD: usize = 256;

impl Credentials {
    /// `None` for another scheme, a missing field, an unknown algorithm, or `qop` other than
    /// `auth`.
    pub fn parse(value: &str) -> Option<Credentials> {
        let (scheme, rest) = value.trim().split_once(char::is_whitespace)?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return None;
        }
        let mut c = Credentials {
            username: String::new(),
            realm: String::new(),
            nonce: String::new(),
            uri: String::new(),
            response: String::new(),
            algorithm: Algorithm::Md5,
            cnonce: String::new(),
            nc: 0,
        };
        let mut qop_auth = false;
        for (name, value) in params(rest) {
            if value.len() > MAX_FIELD {
                return None;
            }
            match name.to_ascii_lowercase().as_str() {
                "username" => c.username = value,
                "realm" => c.realm = value,
                "nonce" => c.nonce = value,
                "uri" => c.uri = value,
                "response" => c.response = value.to_ascii_lowercase(),
                "algorithm" => c.algorithm = Algorithm::parse(&value)?,
                "cnonce" => c.cnonce = value,
                "nc" => c.nc = u32::from_str_radix(&value, 16).ok()?,
                "qop" => qop_auth = value.eq_ignore_ascii_case("auth"),
                _ => {}
            }
        }
        let complete = [&c.username, &c.nonce, &c.uri, &c.response, &c.cnonce]
            .iter()
            .all(|f| !f.is_empty());
        (complete && qop_auth && c.nc > 0).then_some(c)
    }

    /// Whether `response` is right for `method` given the user's `ha1` (hex, for this
    /// credentials' algorithm and realm). Compared in constant time.
    pub fn verify(&self, ha1: &str, method: &str) -> bool {
        let alg = self.algorithm;
        let ha1 = if alg.sess() {
            alg.hash(&format!("{ha1}:{}:{}", self.nonce, self.cnonce))
        } else {
            ha1.to_string()
        };
        let ha2 = alg.hash(&format!("{method}:{}", self.uri));
        let expected = alg.hash(&format!(
            "{ha1}:{}:{:08x}:{}:auth:{ha2}",
            self.nonce, self.nc, self.cnonce
        ));
        expected.as_bytes().ct_eq(self.response.as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::super::Challenge;
    use super::*;

    fn challenge(algorithm: &str) -> Challenge {
        Challenge::parse(&format!(
            r#"Digest realm="ivr", nonce="n1", qop="auth", algorithm={algorithm}"#
        ))
        .unwrap()
    }

    #[test]
    fn answers_from_our_own_client_verify_for_every_algorithm() {
        for name in ["MD5", "MD5-sess", "SHA-256", "SHA-256-sess"] {
            let answer = challenge(name).answer("alice", "s3cret", "INVITE", "sip:ivr@h", 3, "c");
            let creds = Credentials::parse(&answer).unwrap();
            assert_eq!(creds.nc, 3);
            let alg = creds.algorithm;
            let ha1 = alg.hash("alice:ivr:s3cret");
            assert!(creds.verify(&ha1, "INVITE"), "{name}");
            assert!(!creds.verify(&ha1, "REGISTER"), "{name}: method is covered");
            let wrong = alg.hash("alice:ivr:guess");
            assert!(!creds.verify(&wrong, "INVITE"), "{name}: wrong password");
        }
    }

    #[test]
    fn credentials_without_qop_or_with_missing_fields_are_refused() {
        let no_qop = r#"Digest username="a", realm="ivr", nonce="n", uri="sip:x", response="00""#;
        assert!(Credentials::parse(no_qop).is_none());
        let no_cnonce = r#"Digest username="a", realm="ivr", nonce="n", uri="sip:x", response="00", qop=auth, nc=00000001"#;
        assert!(Credentials::parse(no_cnonce).is_none());
        let bad_nc = r#"Digest username="a", realm="ivr", nonce="n", uri="sip:x", response="00", qop=auth, nc=zz, cnonce="c""#;
        assert!(Credentials::parse(bad_nc).is_none());
        assert!(Credentials::parse(r#"Basic YWxhZGRpbjpvcGVuc2VzYW1l"#).is_none());
        let long = format!(
            r#"Digest username="{}", realm="ivr", nonce="n", uri="sip:x", response="00", qop=auth, nc=1, cnonce="c""#,
            "a".repeat(300)
        );
        assert!(Credentials::parse(&long).is_none());
    }
}

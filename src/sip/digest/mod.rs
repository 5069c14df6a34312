//! HTTP digest as SIP uses it (RFC 3261 §22, RFC 7616 / RFC 8760): reading a challenge from
//! `WWW-Authenticate` or `Proxy-Authenticate` and writing the credentials that answer it.
//! MD5 and SHA-256, their `-sess` forms, `qop=auth` (or none, for old servers). The server
//! side, reading the credentials a softphone sends, is in `credentials`.

mod credentials;

pub use credentials::Credentials;

use md5::Md5;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl Algorithm {
    pub fn parse(name: &str) -> Option<Algorithm> {
        match name.to_ascii_uppercase().as_str() {
            "MD5" => Some(Algorithm::Md5),
            "MD5-SESS" => Some(Algorithm::Md5Sess),
            "SHA-256" => Some(Algorithm::Sha256),
            "SHA-256-SESS" => Some(Algorithm::Sha256Sess),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    /// The lowercase hex digest of `text`.
    pub fn hash(self, text: &str) -> String {
        let bytes: Vec<u8> = match self {
            Algorithm::Md5 | Algorithm::Md5Sess => Md5::digest(text.as_bytes()).to_vec(),
            Algorithm::Sha256 | Algorithm::Sha256Sess => Sha256::digest(text.as_bytes()).to_vec(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The hash's strength: a challenge may not ask for less than one seen before.
    pub fn strength(self) -> u8 {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => 0,
            Algorithm::Sha256 | Algorithm::Sha256Sess => 1,
        }
    }

    pub fn sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }
}

/// A challenge from a 401 or 407.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// The server offered `qop=auth`.
    pub qop_auth: bool,
    /// The nonce expired but the credentials were right: retry at once.
    pub stale: bool,
}

impl Challenge {
    /// Reads a `Digest ...` header value; `None` for other schemes, unknown algorithms, or a
    /// server that insists on `auth-int` only.
    pub fn parse(value: &str) -> Option<Challenge> {
        let (scheme, rest) = value.trim().split_once(char::is_whitespace)?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return None;
        }
        let mut challenge = Challenge {
            realm: String::new(),
            nonce: String::new(),
            opaque: None,
            algorithm: Algorithm::Md5,
            qop_auth: false,
            stale: false,
        };
        let mut qop_offered = false;
        for (name, value) in params(rest) {
            match name.to_ascii_lowercase().as_str() {
                "realm" => challenge.realm = value,
                "nonce" => challenge.nonce = value,
                "opaque" => challenge.opaque = Some(value),
                "algorithm" => challenge.algorithm = Algorithm::parse(&value)?,
                "stale" => challenge.stale = value.eq_ignore_ascii_case("true"),
                "qop" => {
                    qop_offered = true;
                    challenge.qop_auth = value
                        .split(',')
                        .any(|q| q.trim().eq_ignore_ascii_case("auth"));
                }
                _ => {}
            }
        }
        if challenge.nonce.is_empty() || (qop_offered && !challenge.qop_auth) {
            return None;
        }
        Some(challenge)
    }

    /// The `Authorization` / `Proxy-Authorization` value for `method` on `uri`, as the
    /// `nc`-th use of this nonce with client nonce `cnonce`.
    pub fn answer(
        &self,
        username: &str,
        password: &str,
        method: &str,
        uri: &str,
        nc: u32,
        cnonce: &str,
    ) -> String {
        let alg = self.algorithm;
        let mut ha1 = alg.hash(&format!("{username}:{}:{password}", self.realm));
        if alg.sess() {
            ha1 = alg.hash(&format!("{ha1}:{}:{cnonce}", self.nonce));
        }
        let ha2 = alg.hash(&format!("{method}:{uri}"));
        let nc = format!("{nc:08x}");
        let response = if self.qop_auth {
            alg.hash(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce))
        } else {
            alg.hash(&format!("{ha1}:{}:{ha2}", self.nonce))
        };
        let mut value = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", algorithm={}",
            quote(username),
            quote(&self.realm),
            quote(&self.nonce),
            alg.name()
        );
        if self.qop_auth || alg.sess() {
            value.push_str(&format!(", cnonce=\"{}\"", quote(cnonce)));
        }
        if self.qop_auth {
            value.push_str(&format!(", qop=auth, nc={nc}"));
        }
        if let Some(opaque) = &self.opaque {
            value.push_str(&format!(", opaque=\"{}\"", quote(opaque)));
        }
        value
    }
}

/// Backslash-escapes what a quoted string may not hold bare.
pub(crate) fn quote(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `name=value` pairs separated by commas; values may be quoted (with backslash escapes).
pub(crate) fn params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let name: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if name.is_empty() {
            return out;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'=').is_some() {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            if chars.next_if_eq(&'"').is_some() {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next()),
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect();
            }
        }
        out.push((name.trim().to_string(), value.trim().to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field<'a>(value: &'a str, name: &str) -> &'a str {
        let start = value.find(&format!("{name}=")).unwrap() + name.len() + 1;
        let rest = &value[start..];
        let rest = rest.strip_prefix('"').unwrap_or(rest);
        &rest[..rest.find(['"', ',']).unwrap_or(rest.len())]
    }

    #[test]
    fn rfc2617_example_gives_its_response() {
        // RFC 2617 §3.5, MD5 with qop=auth.
        let c = Challenge::parse(
            r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .unwrap();
        let answer = c.answer(
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            1,
            "0a4f113b",
        );
        assert_eq!(
            field(&answer, "response"),
            "6629fae49393a05397450978507c4ef1"
        );
        assert_eq!(field(&answer, "nc"), "00000001");
        assert_eq!(field(&answer, "opaque"), "5ccc069c403ebaf9f0171e9517f40e41");
    }

    #[test]
    fn rfc7616_sha256_example_gives_its_response() {
        // RFC 7616 §3.9.1, SHA-256 with qop=auth.
        let c = Challenge::parse(
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#,
        )
        .unwrap();
        assert_eq!(c.algorithm, Algorithm::Sha256);
        let answer = c.answer(
            "Mufasa",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            1,
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        );
        assert_eq!(
            field(&answer, "response"),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        assert!(answer.contains("algorithm=SHA-256"));
    }

    #[test]
    fn challenges_without_qop_and_stale_ones_are_read() {
        let c = Challenge::parse(r#"Digest realm="sip.example", nonce="abc", stale=TRUE"#).unwrap();
        assert!(c.stale && !c.qop_auth);
        let answer = c.answer("u", "p", "REGISTER", "sip:sip.example", 1, "x");
        assert!(
            !answer.contains("qop") && !answer.contains("cnonce"),
            "{answer}"
        );
        let ha1 = Algorithm::Md5.hash("u:sip.example:p");
        let ha2 = Algorithm::Md5.hash("REGISTER:sip:sip.example");
        assert_eq!(
            field(&answer, "response"),
            Algorithm::Md5.hash(&format!("{ha1}:abc:{ha2}"))
        );
        assert!(Challenge::parse(r#"Basic realm="x""#).is_none());
        assert!(Challenge::parse(r#"Digest realm="x", nonce="n", algorithm=SHA-512"#).is_none());
        assert!(Challenge::parse(r#"Digest realm="x", nonce="n", qop="auth-int""#).is_none());
        assert!(Challenge::parse(r#"Digest realm="x""#).is_none());
    }

    #[test]
    fn sess_hashes_the_client_nonce_in() {
        let plain =
            Challenge::parse(r#"Digest realm="r", nonce="n", qop="auth", algorithm=MD5"#).unwrap();
        let sess =
            Challenge::parse(r#"Digest realm="r", nonce="n", qop="auth", algorithm=MD5-sess"#)
                .unwrap();
        let a = plain.answer("u", "p", "REGISTER", "sip:r", 2, "c1");
        let b = sess.answer("u", "p", "REGISTER", "sip:r", 2, "c1");
        let c = sess.answer("u", "p", "REGISTER", "sip:r", 2, "c2");
        assert_ne!(field(&a, "response"), field(&b, "response"));
        assert_ne!(field(&b, "response"), field(&c, "response"));
        assert_eq!(field(&b, "nc"), "00000002");
    }
}

//! SDES (RFC 4568): the `a=crypto` attribute that carries SRTP keys inside the SDP, read from
//! an offer or an answer and written into ours. What we cannot honour is refused with a reason.

use crate::media::srtp::{InboundKey, MasterKey, Suite};

/// RFC 3711's limit on packets under one SRTP master key.
const MAX_LIFETIME: u64 = 1 << 48;
/// Longer MKIs are allowed by RFC 4568 but are written as decimals nobody sends.
const MAX_MKI_LEN: usize = 8;

/// One usable `a=crypto` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crypto {
    pub tag: u32,
    pub suite: Suite,
    pub key: InboundKey,
}

/// Reads the value of an `a=crypto:` attribute, or says why it cannot be used.
pub fn parse(value: &str) -> Result<Crypto, String> {
    let mut fields = value.split_ascii_whitespace();
    let (Some(tag), Some(suite), Some(key_params)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err("a=crypto with fewer than three fields".into());
    };
    let tag: u32 = tag
        .parse()
        .ok()
        .filter(|_| tag.len() <= 9)
        .ok_or("a=crypto tag is not a number of up to 9 digits")?;
    let suite =
        Suite::from_name(suite).ok_or_else(|| format!("crypto suite {suite:.40} not supported"))?;
    for param in fields {
        session_param(param)?;
    }
    if key_params.contains(';') {
        return Err("more than one master key in one a=crypto line".into());
    }
    let key = key_param(key_params)?;
    Ok(Crypto { tag, suite, key })
}

/// Session parameters (RFC 4568 §6.3): the ones that would weaken or change SRTP are refused.
fn session_param(param: &str) -> Result<(), String> {
    let (name, value) = param.split_once('=').unwrap_or((param, ""));
    match name {
        "KDR" if value == "0" => Ok(()),
        "KDR" => Err("key derivation rate (KDR) other than 0 not supported".into()),
        "WSH" => Ok(()),
        "UNENCRYPTED_SRTP" | "UNENCRYPTED_SRTCP" | "UNAUTHENTICATED_SRTP" => Err(format!(
            "{name} refused: media must be encrypted and authenticated"
        )),
        "FEC_ORDER" | "FEC_KEY" => Err(format!("{name} not supported")),
        // Parameters starting with '-' may be ignored when unknown (§6.3.7).
        _ if name.starts_with('-') => Ok(()),
        _ => Err(format!("session parameter {name:.30} not understood")),
    }
}

/// `inline:<key||salt>[|lifetime][|MKI:length]`.
fn key_param(param: &str) -> Result<InboundKey, String> {
    let inline = param
        .strip_prefix("inline:")
        .ok_or("key method other than inline")?;
    let mut parts = inline.split('|');
    let master = parts
        .next()
        .and_then(MasterKey::from_base64)
        .ok_or("inline key is not 30 bytes of base64")?;
    let mut lifetime = MAX_LIFETIME;
    let mut mki = None;
    for part in parts {
        if let Some((value, len)) = part.split_once(':') {
            mki = Some(parse_mki(value, len)?);
        } else {
            lifetime = parse_lifetime(part)?;
        }
    }
    Ok(InboundKey {
        master,
        mki,
        lifetime,
    })
}

fn parse_lifetime(text: &str) -> Result<u64, String> {
    let lifetime = match text.strip_prefix("2^") {
        Some(exp) => exp
            .parse::<u32>()
            .ok()
            .and_then(|e| 1u64.checked_shl(e).filter(|_| e < 64)),
        None => text.parse().ok(),
    };
    match lifetime {
        Some(n) if n <= MAX_LIFETIME => Ok(n),
        Some(_) => Err("key lifetime over 2^48".into()),
        None => Err("key lifetime not a number".into()),
    }
}

fn parse_mki(value: &str, len: &str) -> Result<Box<[u8]>, String> {
    let len: usize = len.parse().map_err(|_| "MKI length not a number")?;
    if !(1..=MAX_MKI_LEN).contains(&len) {
        return Err(format!("MKI of {len} bytes not supported"));
    }
    let value: u64 = value.parse().map_err(|_| "MKI value not a number")?;
    let bytes = value.to_be_bytes();
    if bytes[..8 - len].iter().any(|&b| b != 0) {
        return Err("MKI value longer than its length".into());
    }
    Ok(bytes[8 - len..].into())
}

/// Our `a=crypto` line for `suite`, keyed with what we will send with.
pub fn attribute(tag: u32, suite: Suite, key: &MasterKey) -> String {
    format!(
        "a=crypto:{tag} {} inline:{}\r\n",
        suite.name(),
        key.to_base64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

    #[test]
    fn the_rfc4568_example_line_is_read() {
        let c = parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20|1:4")).unwrap();
        assert_eq!((c.tag, c.suite), (1, Suite::AesCm128HmacSha1_80));
        assert_eq!(c.key.lifetime, 1 << 20);
        assert_eq!(c.key.mki.as_deref(), Some(&[0, 0, 0, 1][..]));
        assert_eq!(c.key.master.to_base64(), KEY);
        let plain = parse(&format!("2 AES_CM_128_HMAC_SHA1_32 inline:{KEY}")).unwrap();
        assert_eq!(
            (plain.tag, plain.key.mki, plain.key.lifetime),
            (2, None, 1 << 48)
        );
    }

    #[test]
    fn what_we_cannot_honour_is_refused_with_a_reason() {
        let cases = [
            ("1 F8_128_HMAC_SHA1_80 inline:{KEY}", "not supported"),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY} KDR=1", "KDR"),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:{KEY} UNENCRYPTED_SRTP",
                "UNENCRYPTED_SRTP",
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:{KEY} FEC_ORDER=FEC_SRTP",
                "FEC_ORDER",
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:{KEY} BOGUS",
                "not understood",
            ),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^49", "lifetime"),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^99", "lifetime"),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|1:9", "MKI of 9"),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|256:1",
                "longer than",
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|1:1;inline:{KEY}|2:1",
                "more than one",
            ),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=", "30 bytes"),
            ("1 AES_CM_128_HMAC_SHA1_80 uri:https://x", "inline"),
            ("9999999999 AES_CM_128_HMAC_SHA1_80 inline:{KEY}", "tag"),
            ("1 AES_CM_128_HMAC_SHA1_80", "three fields"),
        ];
        for (line, reason) in cases {
            let err = parse(&line.replace("{KEY}", KEY)).unwrap_err();
            assert!(err.contains(reason), "{line}: {err}");
        }
        let ignorable = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY} WSH=64 -X-VENDOR");
        assert!(parse(&ignorable).is_ok());
    }

    #[test]
    fn our_attribute_reads_back_as_the_same_key() {
        let key = MasterKey::random();
        let line = attribute(3, Suite::AesCm128HmacSha1_32, &key);
        let value = line.trim_end().strip_prefix("a=crypto:").unwrap();
        let c = parse(value).unwrap();
        assert_eq!(
            (c.tag, c.suite, c.key.master),
            (3, Suite::AesCm128HmacSha1_32, key)
        );
    }
}

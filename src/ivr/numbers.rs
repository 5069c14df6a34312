//! Numbers and amounts as sequences of recorded word prompts (`num/7`, `num/hundred`, ...),
//! so a balance is spoken from studio recordings rather than a synthesiser.

use crate::directory::Amount;

const MAX: u64 = 999_999_999;

/// `1234` → one thousand two hundred thirty four.
pub fn number(n: u64) -> Option<Vec<String>> {
    if n > MAX {
        return None;
    }
    if n == 0 {
        return Some(vec!["num/0".into()]);
    }
    let mut out = Vec::new();
    for (scale, word) in [
        (1_000_000, Some("million")),
        (1_000, Some("thousand")),
        (1, None),
    ] {
        let group = n / scale % 1000;
        if group == 0 {
            continue;
        }
        below_thousand(group, &mut out);
        if let Some(word) = word {
            out.push(format!("num/{word}"));
        }
    }
    Some(out)
}

fn below_thousand(n: u64, out: &mut Vec<String>) {
    if n >= 100 {
        out.push(format!("num/{}", n / 100));
        out.push("num/hundred".into());
    }
    let rest = n % 100;
    match rest {
        0 => {}
        1..=19 => out.push(format!("num/{rest}")),
        _ => {
            out.push(format!("num/{}", rest / 10 * 10));
            if !rest.is_multiple_of(10) {
                out.push(format!("num/{}", rest % 10));
            }
        }
    }
}

/// `1234.56` → one thousand ... dollars and fifty six cents; `None` past a billion.
pub fn amount(amount: Amount) -> Option<Vec<String>> {
    let (dollars, cents) = (amount.units(), amount.hundredths());
    let negative = amount.is_negative();
    let mut out = Vec::new();
    if negative && (dollars > 0 || cents > 0) {
        out.push("num/minus".into());
    }
    out.extend(number(dollars)?);
    out.push(
        if dollars == 1 {
            "num/dollar"
        } else {
            "num/dollars"
        }
        .into(),
    );
    if cents > 0 {
        out.push("num/and".into());
        out.extend(number(cents)?);
        out.push(if cents == 1 { "num/cent" } else { "num/cents" }.into());
    }
    Some(out)
}

/// Every prompt `number` and `amount` may ask for.
pub fn word_prompts() -> Vec<String> {
    let mut names: Vec<String> = (0..=20)
        .chain((30..=90).step_by(10))
        .map(|n| format!("num/{n}"))
        .collect();
    for w in [
        "hundred", "thousand", "million", "dollar", "dollars", "cent", "cents", "and", "minus",
    ] {
        names.push(format!("num/{w}"));
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(v: Option<Vec<String>>) -> String {
        v.unwrap()
            .iter()
            .map(|p| p.trim_start_matches("num/"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn numbers_are_spoken_in_words() {
        assert_eq!(words(number(0)), "0");
        assert_eq!(words(number(15)), "15");
        assert_eq!(words(number(40)), "40");
        assert_eq!(words(number(42)), "40 2");
        assert_eq!(words(number(100)), "1 hundred");
        assert_eq!(words(number(1234)), "1 thousand 2 hundred 30 4");
        assert_eq!(words(number(1_000_001)), "1 million 1");
        assert_eq!(
            words(number(999_999_999)),
            "9 hundred 90 9 million 9 hundred 90 9 thousand 9 hundred 90 9"
        );
        assert_eq!(number(1_000_000_000), None);
    }

    fn said(text: &str) -> String {
        words(amount(text.parse().unwrap()))
    }

    #[test]
    fn amounts_have_dollars_and_cents() {
        assert_eq!(
            said("1234.56"),
            "1 thousand 2 hundred 30 4 dollars and 50 6 cents"
        );
        assert_eq!(said("1"), "1 dollar");
        assert_eq!(said("0.01"), "0 dollars and 1 cent");
        assert_eq!(said("12.5"), "12 dollars and 50 cents");
        assert_eq!(said("-3.00"), "minus 3 dollars");
        assert_eq!(
            amount("1000000000".parse().unwrap()),
            None,
            "too large to say"
        );
    }

    #[test]
    fn every_word_used_is_shipped() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
        for name in word_prompts() {
            assert!(
                dir.join(format!("{name}.wav")).exists(),
                "prompts/{name}.wav is missing"
            );
        }
    }
}

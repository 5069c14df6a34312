//! Numbers and amounts as sequences of recorded word prompts (`num/7`, `num/hundred`, ...),
//! so a balance is spoken from studio recordings rather than a synthesiser. How a language
//! builds a number from its words is data, `numbers.toml` beside its prompts: which numbers
//! have a word of their own, and per scale (million, thousand, hundred) how one, several and an
//! exact multiple are said. English and Spanish ship; another language is a new file.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::directory::Amount;

const MAX: u64 = 999_999_999;

/// A language's number grammar, as `numbers.toml` gives it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grammar {
    /// The prompt folder of the words, relative to the language's prompts (`num`).
    #[serde(default = "default_folder")]
    pub folder: String,
    /// Numbers below 100 with a word of their own (the rest are tens, `tens_joiner`, units).
    pub words: Vec<u64>,
    /// Said between tens and units (Spanish `y`); none in English.
    #[serde(default)]
    pub tens_joiner: Vec<String>,
    /// Largest first: how multiples of a million, a thousand, a hundred are said.
    pub scales: Vec<Scale>,
    pub currency: Currency,
    pub minus: Vec<String>,
}

fn default_folder() -> String {
    "num".into()
}

/// Token lists: a word prompt (`hundred`, in the grammar's folder), `{n}` for the multiplier
/// said as a number, or `{value}` for the word of multiplier × scale (Spanish `doscientos`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scale {
    pub value: u64,
    /// Multiplier 1 (English `one hundred`, Spanish `ciento`, `mil`, `un millón`).
    pub one: Vec<String>,
    /// Multiplier 1 with nothing after it (Spanish `cien`); `one` when not given.
    #[serde(default)]
    pub one_exact: Option<Vec<String>>,
    pub many: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Currency {
    /// `{n}` is the count: `["{n}", "dollars"]`; `one` is used for exactly 1.
    pub units_one: Vec<String>,
    pub units_many: Vec<String>,
    /// Between the units and the hundredths (`and`, `con`).
    pub joiner: Vec<String>,
    pub cents_one: Vec<String>,
    pub cents_many: Vec<String>,
}

impl Grammar {
    /// Reads `numbers.toml` from a language's prompt folder.
    pub fn load(path: &Path) -> Result<Grammar> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let grammar: Grammar =
            toml::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
        grammar
            .check()
            .with_context(|| format!("in {}", path.display()))?;
        Ok(grammar)
    }

    fn check(&self) -> Result<()> {
        for n in 0..100 {
            let composed = self.has_word(n / 10 * 10) && self.has_word(n % 10);
            if !(self.has_word(n) || composed) {
                bail!("{n} has no word and is not tens and units that have");
            }
        }
        let mut last = u64::MAX;
        for scale in &self.scales {
            if scale.value >= last || scale.value < 100 {
                bail!("scales must be 100 or more, largest first");
            }
            last = scale.value;
        }
        if self.scales.last().map(|s| s.value) != Some(100) {
            bail!("the last scale must be 100");
        }
        Ok(())
    }

    fn has_word(&self, n: u64) -> bool {
        self.words.contains(&n)
    }

    fn word(&self, name: impl std::fmt::Display) -> String {
        format!("{}/{name}", self.folder)
    }

    /// `1234` → the prompts that say it; `None` past 999,999,999.
    pub fn number(&self, n: u64) -> Option<Vec<String>> {
        if n > MAX {
            return None;
        }
        let mut out = Vec::new();
        self.say(n, &mut out);
        Some(out)
    }

    fn say(&self, n: u64, out: &mut Vec<String>) {
        if n < 100 {
            return self.below_hundred(n, out);
        }
        let Some(scale) = self.scales.iter().find(|s| n >= s.value) else {
            return self.below_hundred(n % 100, out);
        };
        let (multiplier, rest) = (n / scale.value, n % scale.value);
        let tokens = match (multiplier, rest, &scale.one_exact) {
            (1, 0, Some(exact)) => exact,
            (1, _, _) => &scale.one,
            _ => &scale.many,
        };
        for token in tokens {
            match token.as_str() {
                "{n}" => self.say(multiplier, out),
                "{value}" => out.push(self.word(multiplier * scale.value)),
                word => out.push(self.word(word)),
            }
        }
        if rest > 0 {
            self.say(rest, out);
        }
    }

    fn below_hundred(&self, n: u64, out: &mut Vec<String>) {
        if self.has_word(n) {
            return out.push(self.word(n));
        }
        out.push(self.word(n / 10 * 10));
        out.extend(self.tens_joiner.iter().map(|w| self.word(w)));
        out.push(self.word(n % 10));
    }

    /// `1234.56` → units, joiner, hundredths, each with its currency word; `None` past a billion.
    pub fn amount(&self, amount: Amount) -> Option<Vec<String>> {
        let (units, cents) = (amount.units(), amount.hundredths());
        let mut out = Vec::new();
        if amount.is_negative() && (units > 0 || cents > 0) {
            out.extend(self.minus.iter().map(|w| self.word(w)));
        }
        let c = &self.currency;
        self.counted(units, &c.units_one, &c.units_many, &mut out)?;
        if cents > 0 {
            out.extend(c.joiner.iter().map(|w| self.word(w)));
            self.counted(cents, &c.cents_one, &c.cents_many, &mut out)?;
        }
        Some(out)
    }

    fn counted(
        &self,
        n: u64,
        one: &[String],
        many: &[String],
        out: &mut Vec<String>,
    ) -> Option<()> {
        for token in if n == 1 { one } else { many } {
            match token.as_str() {
                "{n}" => out.extend(self.number(n)?),
                word => out.push(self.word(word)),
            }
        }
        Some(())
    }

    /// Every prompt `number` and `amount` may ask for.
    pub fn word_prompts(&self) -> Vec<String> {
        let c = &self.currency;
        let mut names: BTreeSet<String> = self.words.iter().map(|n| self.word(n)).collect();
        let lists = self
            .scales
            .iter()
            .flat_map(|s| [&s.one, &s.many].into_iter().chain(&s.one_exact))
            .chain([&self.tens_joiner, &self.minus, &c.units_one, &c.units_many])
            .chain([&c.joiner, &c.cents_one, &c.cents_many]);
        for list in lists {
            names.extend(
                list.iter()
                    .filter(|t| !t.starts_with('{'))
                    .map(|t| self.word(t)),
            );
        }
        for scale in &self.scales {
            if scale.many.iter().any(|t| t == "{value}") {
                names.extend((2..10).map(|m| self.word(m * scale.value)));
            }
        }
        names.into_iter().collect()
    }
}

/// The prompts that say `text`'s digits one by one (`num/4`); anything else in it is skipped.
pub fn digit_prompts(text: &str) -> impl Iterator<Item = String> + '_ {
    text.chars()
        .filter(char::is_ascii_digit)
        .map(|d| format!("num/{d}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grammar(lang: &str) -> Grammar {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("prompts")
            .join(lang);
        Grammar::load(&dir.join("numbers.toml")).unwrap()
    }

    fn words(v: Option<Vec<String>>) -> String {
        v.unwrap()
            .iter()
            .map(|p| p.trim_start_matches("num/"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn english_numbers_are_spoken_in_words() {
        let en = grammar("");
        let say = |n| words(en.number(n));
        assert_eq!(say(0), "0");
        assert_eq!(say(15), "15");
        assert_eq!(say(40), "40");
        assert_eq!(say(42), "40 2");
        assert_eq!(say(100), "1 hundred");
        assert_eq!(say(1234), "1 thousand 2 hundred 30 4");
        assert_eq!(say(1_000_001), "1 million 1");
        assert_eq!(
            say(999_999_999),
            "9 hundred 90 9 million 9 hundred 90 9 thousand 9 hundred 90 9"
        );
        assert_eq!(en.number(1_000_000_000), None);
    }

    #[test]
    fn spanish_numbers_follow_spanish_grammar() {
        let es = grammar("es");
        let say = |n| words(es.number(n));
        assert_eq!(say(0), "0");
        assert_eq!(say(23), "23", "veintitrés is one word");
        assert_eq!(say(33), "30 y 3", "treinta y tres");
        assert_eq!(say(100), "100", "cien");
        assert_eq!(say(103), "ciento 3");
        assert_eq!(say(250), "200 50", "doscientos cincuenta");
        assert_eq!(say(1000), "mil");
        assert_eq!(say(1234), "mil 200 30 y 4");
        assert_eq!(say(2500), "2 mil 500");
        assert_eq!(say(1_000_000), "un millon");
        assert_eq!(say(3_000_021), "3 millones 21");
    }

    #[test]
    fn amounts_have_units_and_hundredths_in_each_language() {
        let (en, es) = (grammar(""), grammar("es"));
        let said = |g: &Grammar, text: &str| words(g.amount(text.parse().unwrap()));
        assert_eq!(
            said(&en, "1234.56"),
            "1 thousand 2 hundred 30 4 dollars and 50 6 cents"
        );
        assert_eq!(said(&en, "1"), "1 dollar");
        assert_eq!(said(&en, "0.01"), "0 dollars and 1 cent");
        assert_eq!(said(&en, "12.5"), "12 dollars and 50 cents");
        assert_eq!(said(&en, "-3.00"), "minus 3 dollars");
        assert_eq!(
            en.amount("1000000000".parse().unwrap()),
            None,
            "too large to say"
        );
        assert_eq!(
            said(&es, "1234.56"),
            "mil 200 30 y 4 dolares con 50 y 6 centavos"
        );
        assert_eq!(said(&es, "1.01"), "un dolar con un centavo");
        assert_eq!(said(&es, "-100"), "menos 100 dolares");
    }

    #[test]
    fn every_word_used_is_shipped() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
        for lang in ["", "es"] {
            for name in grammar(lang).word_prompts() {
                let file = root.join(lang).join(format!("{name}.wav"));
                assert!(file.exists(), "{} is missing", file.display());
            }
        }
    }

    #[test]
    fn a_grammar_that_cannot_say_every_number_is_refused() {
        let mut bad = grammar("es");
        bad.words.retain(|&n| n != 7);
        assert!(bad
            .check()
            .unwrap_err()
            .to_string()
            .contains("7 has no word"));
        let mut unordered = grammar("");
        unordered.scales.reverse();
        assert!(unordered.check().is_err());
    }
}

//! What each recording says: the text beside it in `prompts/manifest.txt` (and each language
//! folder's, under `<lang>/`), the same text `generate.sh` speaks into it.

use std::collections::HashMap;
use std::path::Path;

/// The one shipped recording that is a tone, not words (`generate.sh` makes it with sox).
const RINGBACK: &str = "ringback";

#[derive(Debug, Default)]
pub struct Transcripts(HashMap<String, String>);

impl Transcripts {
    /// Reads the manifests under `dir`; a missing one is no transcripts, not an error.
    pub fn load(dir: &Path) -> Transcripts {
        let mut all = HashMap::new();
        read(&dir.join("manifest.txt"), "", &mut all);
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten().filter(|e| e.path().is_dir()) {
                let folder = entry.file_name().to_string_lossy().into_owned();
                read(
                    &entry.path().join("manifest.txt"),
                    &format!("{folder}/"),
                    &mut all,
                );
            }
        }
        Transcripts(all)
    }

    /// The text of prompt `name`, or its name in brackets when no manifest has it.
    pub fn of(&self, name: &str) -> String {
        if name == RINGBACK {
            return "(ringing)".into();
        }
        self.0
            .get(name)
            .cloned()
            .unwrap_or_else(|| format!("[{name}]"))
    }
}

/// `name|text[|voice|text]` lines: the texts of every voice, in order.
fn read(path: &Path, prefix: &str, into: &mut HashMap<String, String>) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut fields = line.split('|');
        let (Some(name), Some(first)) = (fields.next(), fields.next()) else {
            continue;
        };
        let others: Vec<&str> = fields.skip(1).step_by(2).collect();
        let said = std::iter::once(first)
            .chain(others)
            .collect::<Vec<_>>()
            .join(" ");
        into.insert(format!("{prefix}{}", name.trim()), said.trim().to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_prompts_all_have_their_text() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
        let transcripts = Transcripts::load(&dir);
        assert_eq!(
            transcripts.of("menu"),
            "Press 1 for account balance, 2 for payments, 0 for an operator, 9 to exit. Para español, oprima ocho."
        );
        assert_eq!(transcripts.of("num/1"), "one");
        assert!(transcripts.of("es/welcome").starts_with("Bienvenido"));
        assert_eq!(transcripts.of("no_such"), "[no_such]");
        for entry in walk(&dir) {
            let name = entry
                .strip_prefix(&dir)
                .unwrap()
                .with_extension("")
                .display()
                .to_string();
            assert!(
                !transcripts.of(&name).starts_with('['),
                "prompts/{name}.wav has no line in a manifest"
            );
        }
    }

    fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else if path.extension().is_some_and(|e| e == "wav") {
                out.push(path);
            }
        }
        out
    }
}

//! Standard operating procedures: a directory of Markdown files by category, and the most
//! relevant ones for a batch of threads by lexical similarity (TF-IDF cosine, no service).

use std::collections::HashMap;
use std::path::Path;

use crate::Error;

/// One SOP file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sop {
    /// Its category: the subdirectory it is in (`general` at the top level).
    pub category: String,
    /// Its path relative to the library's root, with `/` separators.
    pub path: String,
    /// Its first `# ` heading, or its file name.
    pub title: String,
    /// Its text.
    pub text: String,
}

/// The SOP library, indexed for similarity.
#[derive(Debug, Clone, Default)]
pub struct SopLibrary {
    sops: Vec<Sop>,
    vectors: Vec<HashMap<String, f64>>,
    idf: HashMap<String, f64>,
}

const STOPWORDS: &[&str] = &[
    "the", "a", "an", "and", "or", "to", "of", "in", "on", "for", "is", "are", "it", "you", "we",
    "i", "at", "be", "this", "that", "with", "our", "your", "can", "do", "if", "as", "by", "from",
    "my", "me",
];

fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|t| t.len() > 1 && !STOPWORDS.contains(&t.as_str()))
        .collect()
}

fn term_counts(text: &str) -> HashMap<String, f64> {
    let mut counts = HashMap::new();
    for token in tokens(text) {
        *counts.entry(token).or_insert(0.0) += 1.0;
    }
    counts
}

impl SopLibrary {
    /// Loads every `.md` file under `root` (one level of category subdirectories).
    pub fn load(root: &Path) -> Result<Self, Error> {
        let io = |path: &Path, source| Error::Io {
            path: path.display().to_string(),
            source,
        };
        let mut sops = Vec::new();
        let mut dirs = vec![(root.to_path_buf(), "general".to_owned())];
        while let Some((dir, category)) = dirs.pop() {
            let mut names: Vec<_> = std::fs::read_dir(&dir)
                .map_err(|e| io(&dir, e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| io(&dir, e))?;
            names.sort_by_key(std::fs::DirEntry::path);
            for item in names {
                let path = item.path();
                if path.is_dir() && dir == root {
                    let name = item.file_name().to_string_lossy().into_owned();
                    dirs.push((path, name));
                } else if path.extension().is_some_and(|e| e == "md") {
                    let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
                    let relative = path.strip_prefix(root).unwrap_or(&path);
                    let title = text
                        .lines()
                        .find_map(|line| line.strip_prefix("# "))
                        .map(str::trim)
                        .map(str::to_owned)
                        .unwrap_or_else(|| {
                            item.file_name()
                                .to_string_lossy()
                                .trim_end_matches(".md")
                                .to_owned()
                        });
                    sops.push(Sop {
                        category: category.clone(),
                        path: relative.to_string_lossy().replace('\\', "/"),
                        title,
                        text,
                    });
                }
            }
        }
        Ok(Self::new(sops))
    }

    /// A library of `sops`.
    pub fn new(sops: Vec<Sop>) -> Self {
        let counts: Vec<HashMap<String, f64>> = sops
            .iter()
            .map(|s| term_counts(&format!("{} {}", s.title, s.text)))
            .collect();
        let mut df: HashMap<String, f64> = HashMap::new();
        for doc in &counts {
            for term in doc.keys() {
                *df.entry(term.clone()).or_insert(0.0) += 1.0;
            }
        }
        let n = sops.len() as f64;
        let idf: HashMap<String, f64> = df
            .into_iter()
            .map(|(t, d)| (t, ((n + 1.0) / (d + 1.0)).ln() + 1.0))
            .collect();
        let vectors = counts.iter().map(|doc| weigh(doc, &idf)).collect();
        SopLibrary { sops, vectors, idf }
    }

    /// Every SOP.
    pub fn all(&self) -> &[Sop] {
        &self.sops
    }

    /// The `k` SOPs most similar to `text` (those sharing at least one term), best first.
    pub fn relevant(&self, text: &str, k: usize) -> Vec<&Sop> {
        let query = weigh(&term_counts(text), &self.idf);
        let mut scored: Vec<(f64, usize)> = self
            .vectors
            .iter()
            .enumerate()
            .map(|(i, doc)| (cosine(&query, doc), i))
            .filter(|(score, _)| *score > 0.0)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored
            .into_iter()
            .take(k)
            .map(|(_, i)| &self.sops[i])
            .collect()
    }
}

fn weigh(counts: &HashMap<String, f64>, idf: &HashMap<String, f64>) -> HashMap<String, f64> {
    counts
        .iter()
        .filter_map(|(t, c)| idf.get(t).map(|w| (t.clone(), c * w)))
        .collect()
}

fn cosine(a: &HashMap<String, f64>, b: &HashMap<String, f64>) -> f64 {
    let dot: f64 = a.iter().filter_map(|(t, x)| b.get(t).map(|y| x * y)).sum();
    let norm = |v: &HashMap<String, f64>| v.values().map(|x| x * x).sum::<f64>().sqrt();
    let (na, nb) = (norm(a), norm(b));
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sop(category: &str, path: &str, text: &str) -> Sop {
        Sop {
            category: category.into(),
            path: path.into(),
            title: path.into(),
            text: text.into(),
        }
    }

    #[test]
    fn the_closest_sops_come_first() {
        let library = SopLibrary::new(vec![
            sop(
                "bookings",
                "bookings/cancel.md",
                "Cancelling a bay booking: refunds within 24 hours",
            ),
            sop(
                "bookings",
                "bookings/leagues.md",
                "League nights every Tuesday, teams of four",
            ),
            sop(
                "facility",
                "facility/simulator.md",
                "Simulator calibration and launch monitor errors",
            ),
        ]);
        let found = library.relevant("Can I cancel my booking tomorrow and get a refund?", 2);
        assert_eq!(found[0].path, "bookings/cancel.md");
        assert!(library.relevant("zebra", 3).is_empty());
    }
}

//! Insights: what a model proposes from a batch of threads, parsed strictly, then reviewed.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::Error;

/// How sure the model is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// High.
    High,
    /// Medium.
    Medium,
    /// Low.
    Low,
}

/// One insight as the model gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewInsight {
    /// Where it came from (a quote or paraphrase of the customer's question or request).
    pub source: String,
    /// What is new.
    pub summary: String,
    /// What to do about it.
    pub action: String,
    /// The SOP category it belongs to.
    pub category: String,
    /// The SOP file it would change (a path of the library), or `null` for a new one.
    pub sop_target: Option<String>,
    /// How sure the model is.
    pub confidence: Confidence,
    /// The threads it came from (ids of the batch).
    pub thread_ids: Vec<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Output {
    insights: Vec<NewInsight>,
}

/// Parses a model's output strictly: a JSON object `{"insights": [...]}` (a Markdown code
/// fence around it is tolerated), every field present and typed, no unknown field, non-blank
/// texts, and thread ids of the batch only. The error says what is wrong, to feed back.
pub fn parse(output: &str, batch: &[i64]) -> Result<Vec<NewInsight>, Error> {
    let mut text = output.trim();
    if let Some(rest) = text.strip_prefix("```") {
        let rest = rest.strip_prefix("json").unwrap_or(rest);
        text = rest
            .trim_start()
            .strip_suffix("```")
            .map(str::trim)
            .ok_or_else(|| Error::Output("an unclosed code fence".into()))?;
    }
    let parsed: Output = serde_json::from_str(text)
        .map_err(|e| Error::Output(format!("not the expected JSON: {e}")))?;
    for (i, insight) in parsed.insights.iter().enumerate() {
        for (field, value) in [
            ("source", &insight.source),
            ("summary", &insight.summary),
            ("action", &insight.action),
            ("category", &insight.category),
        ] {
            if value.trim().is_empty() {
                return Err(Error::Output(format!("insights[{i}].{field} is blank")));
            }
        }
        if insight.thread_ids.is_empty() {
            return Err(Error::Output(format!("insights[{i}].thread_ids is empty")));
        }
        if let Some(id) = insight.thread_ids.iter().find(|id| !batch.contains(id)) {
            return Err(Error::Output(format!(
                "insights[{i}].thread_ids names {id}, which is not in this batch"
            )));
        }
    }
    Ok(parsed.insights)
}

/// Where a stored insight is in review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Review {
    /// Waiting for a person.
    Pending,
    /// Approved: may become an SOP change.
    Approved,
    /// Rejected.
    Rejected,
}

impl Review {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Review::Pending => "pending",
            Review::Approved => "approved",
            Review::Rejected => "rejected",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => Review::Pending,
            "approved" => Review::Approved,
            "rejected" => Review::Rejected,
            _ => return None,
        })
    }
}

/// A stored insight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Insight {
    /// Its id.
    pub id: i64,
    /// What the model said.
    #[serde(flatten)]
    pub insight: NewInsight,
    /// The provider and model that produced it.
    pub produced_by: String,
    /// The prompt version.
    pub prompt_version: String,
    /// Review status.
    pub review: Review,
    /// Who decided.
    pub decided_by: Option<String>,
    /// Their note.
    pub note: Option<String>,
    /// When it was stored.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "utoipa", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    /// When it was decided.
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "utoipa", schema(value_type = Option<String>, format = DateTime))]
    pub decided_at: Option<OffsetDateTime>,
}

impl Insight {
    /// A Markdown patch suggestion against the SOP it targets (or a new file in its
    /// category): a unified-diff-style addition of a section, for a person to apply.
    pub fn patch_suggestion(&self) -> String {
        let target = self
            .insight
            .sop_target
            .clone()
            .unwrap_or_else(|| format!("{}/new-{}.md", self.insight.category, self.id));
        format!(
            "--- a/{target}\n+++ b/{target}\n@@ insight {id} ({confidence:?} confidence, approved by {by}) @@\n+\n+## {summary}\n+\n+{action}\n+\n+_Source: {source} (threads {threads})._\n",
            id = self.id,
            confidence = self.insight.confidence,
            by = self.decided_by.as_deref().unwrap_or("?"),
            summary = self.insight.summary,
            action = self.insight.action,
            source = self.insight.source,
            threads = self
                .insight
                .thread_ids
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"insights": [{"source": "Can kids play?", "summary": "Age policy missing",
        "action": "Add a minimum age", "category": "bookings", "sop_target": "bookings/policy.md",
        "confidence": "medium", "thread_ids": [7]}]}"#;

    #[test]
    fn strict_json_is_parsed_with_or_without_a_fence() {
        assert_eq!(parse(GOOD, &[7]).unwrap()[0].confidence, Confidence::Medium);
        assert_eq!(
            parse(&format!("```json\n{GOOD}\n```"), &[7]).unwrap().len(),
            1
        );
        assert_eq!(parse(&format!("```\n{GOOD}\n```"), &[7]).unwrap().len(), 1);
        assert!(parse(r#"{"insights": []}"#, &[7]).unwrap().is_empty());
    }

    #[test]
    fn anything_else_is_an_error_saying_what() {
        let wrong_thread = parse(GOOD, &[8]).unwrap_err().to_string();
        assert!(wrong_thread.contains("not in this batch"), "{wrong_thread}");
        let extra = GOOD.replace("\"category\"", "\"mood\": \"x\", \"category\"");
        assert!(
            parse(&extra, &[7])
                .unwrap_err()
                .to_string()
                .contains("unknown field")
        );
        let bad_confidence = GOOD.replace("medium", "certain");
        assert!(parse(&bad_confidence, &[7]).is_err());
        assert!(parse("Here are the insights: none", &[7]).is_err());
        assert!(
            parse(&GOOD.replace("Age policy missing", " "), &[7])
                .unwrap_err()
                .to_string()
                .contains("summary")
        );
    }
}

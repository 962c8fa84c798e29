//! Message templates: `{{first_name}}` tokens with fallbacks, the business name and opt-out
//! wording every campaign message carries, and SMS segment counts.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::Error;

/// A parsed template: literal text and `{{field}}` or `{{field|fallback}}` tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Token {
        field: String,
        fallback: Option<String>,
    },
}

impl Template {
    /// Parses `text`. Field names are case-insensitive; spaces around them are ignored. An
    /// unclosed `{{` or an empty field name is an error.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| Error::Invalid(format!("unclosed {{{{ in template: {text:?}")))?;
            let inner = &after[..end];
            let (field, fallback) = match inner.split_once('|') {
                Some((field, fallback)) => (field, Some(fallback.trim().to_owned())),
                None => (inner, None),
            };
            let field = field_key(field);
            if field.is_empty() {
                return Err(Error::Invalid(format!("empty token in template: {text:?}")));
            }
            parts.push(Part::Token { field, fallback });
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// The fields the template uses, in order of first use.
    pub fn fields(&self) -> Vec<&str> {
        let mut fields: Vec<&str> = Vec::new();
        for part in &self.parts {
            if let Part::Token { field, .. } = part
                && !fields.contains(&field.as_str())
            {
                fields.push(field);
            }
        }
        fields
    }

    /// The template's literal text, without its tokens: the least any rendering holds.
    pub fn fixed_text(&self) -> String {
        self.parts
            .iter()
            .filter_map(|part| match part {
                Part::Text(text) => Some(text.as_str()),
                Part::Token { .. } => None,
            })
            .collect()
    }

    /// Renders the template with `values` (keys as [`field_key`] makes them). A token whose
    /// value is missing or blank takes its fallback; without one, rendering fails naming the
    /// field, so no message goes out with a hole in it.
    pub fn render(&self, values: &BTreeMap<String, String>) -> Result<String, MissingField> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Token { field, fallback } => {
                    match values
                        .get(field)
                        .map(|v| v.trim())
                        .filter(|v| !v.is_empty())
                    {
                        Some(value) => out.push_str(value),
                        None => match fallback {
                            Some(fallback) => out.push_str(fallback),
                            None => return Err(MissingField(field.clone())),
                        },
                    }
                }
            }
        }
        Ok(out)
    }
}

/// A token had no value and no fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingField(pub String);

/// Normalizes a field or column name: lower case, spaces, dashes and dots as underscores
/// (`First Name` and `first-name` are both `first_name`).
pub fn field_key(name: &str) -> String {
    let mut key = String::new();
    for c in name.trim().chars() {
        if c.is_alphanumeric() {
            key.extend(c.to_lowercase());
        } else if matches!(c, ' ' | '_' | '-' | '.') && !key.ends_with('_') {
            key.push('_');
        }
    }
    key.trim_matches('_').to_owned()
}

/// What every campaign message carries besides its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The business name; appended (as ` - Name`) when the text does not contain it.
    pub business_name: String,
    /// Opt-out wording appended to every message (e.g. `Reply STOP to opt out.`), if any.
    pub opt_out: Option<String>,
}

impl Signature {
    /// `text` with the business name (unless present, case ignored) and the opt-out wording.
    pub fn apply(&self, text: &str) -> String {
        let mut out = text.trim_end().to_owned();
        let name = self.business_name.trim();
        if !name.is_empty() && !out.to_lowercase().contains(&name.to_lowercase()) {
            out.push_str(" - ");
            out.push_str(name);
        }
        if let Some(opt_out) = self
            .opt_out
            .as_deref()
            .map(str::trim)
            .filter(|o| !o.is_empty())
        {
            out.push(' ');
            out.push_str(opt_out);
        }
        out
    }
}

/// How a message is encoded, and so how many characters fit in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// The GSM 03.38 alphabet: 160 characters in one segment, 153 per part when split.
    Gsm7,
    /// Anything else (emoji, most accents, curly quotes): 70, then 67 per part.
    Ucs2,
}

/// The size of a message as the carrier bills it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Segments {
    /// Characters (Unicode scalar values).
    pub characters: usize,
    /// The encoding the text needs.
    pub encoding: Encoding,
    /// Code units in that encoding (GSM septets, with extension characters counting two;
    /// UTF-16 units for UCS-2).
    pub units: usize,
    /// Segments billed.
    pub segments: usize,
}

const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_EXTENSION: &str = "^{}\\[~]|€\x0c";

/// Counts characters and segments of `text`.
pub fn segments(text: &str) -> Segments {
    let characters = text.chars().count();
    let mut septets = 0;
    let mut gsm = true;
    for c in text.chars() {
        if GSM_BASIC.contains(c) {
            septets += 1;
        } else if GSM_EXTENSION.contains(c) {
            septets += 2;
        } else {
            gsm = false;
            break;
        }
    }
    let (encoding, units, single, part) = if gsm {
        (Encoding::Gsm7, septets, 160, 153)
    } else {
        (Encoding::Ucs2, text.encode_utf16().count(), 70, 67)
    };
    let segments = match units {
        0 => 0,
        n if n <= single => 1,
        n => n.div_ceil(part),
    };
    Segments {
        characters,
        encoding,
        units,
        segments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn tokens_render_with_fallbacks() {
        let template =
            Template::parse("Hi {{ First Name | there }}, your {{job}} is booked").expect("parses");
        assert_eq!(template.fields(), vec!["first_name", "job"]);
        assert_eq!(
            template.render(&values(&[("first_name", "Ana"), ("job", "pier")])),
            Ok("Hi Ana, your pier is booked".to_owned())
        );
        assert_eq!(
            template.render(&values(&[("first_name", "  "), ("job", "pier")])),
            Ok("Hi there, your pier is booked".to_owned())
        );
        assert_eq!(
            template.render(&values(&[("first_name", "Ana")])),
            Err(MissingField("job".to_owned()))
        );
    }

    #[test]
    fn malformed_templates_are_refused() {
        assert!(Template::parse("Hi {{first_name").is_err());
        assert!(Template::parse("Hi {{ |x}}").is_err());
        assert_eq!(
            Template::parse("no tokens").expect("parses").fields(),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn the_business_is_named_once_and_opt_out_appended() {
        let signature = Signature {
            business_name: "Acme Piers".to_owned(),
            opt_out: Some("Reply STOP to opt out.".to_owned()),
        };
        assert_eq!(
            signature.apply("Hi Ana "),
            "Hi Ana - Acme Piers Reply STOP to opt out."
        );
        assert_eq!(
            signature.apply("ACME PIERS here: hi"),
            "ACME PIERS here: hi Reply STOP to opt out."
        );
    }

    #[test]
    fn segments_follow_gsm_and_ucs2_limits() {
        let s = segments(&"a".repeat(160));
        assert_eq!((s.encoding, s.segments), (Encoding::Gsm7, 1));
        assert_eq!(segments(&"a".repeat(161)).segments, 2);
        assert_eq!(segments(&"a".repeat(306)).segments, 2);
        assert_eq!(segments(&"a".repeat(307)).segments, 3);
        // Extension characters take two septets.
        assert_eq!(segments(&"€".repeat(80)).units, 160);
        assert_eq!(segments(&"€".repeat(81)).segments, 2);
        let emoji = segments(&format!("{}👍", "a".repeat(68)));
        assert_eq!(
            (emoji.encoding, emoji.units, emoji.segments),
            (Encoding::Ucs2, 70, 1)
        );
        assert_eq!(segments(&"é".repeat(10)).encoding, Encoding::Gsm7);
        assert_eq!(segments("ł").encoding, Encoding::Ucs2);
        assert_eq!(segments(&"ł".repeat(71)).segments, 2);
        assert_eq!(segments("").segments, 0);
    }
}

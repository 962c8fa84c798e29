use std::fmt;

use serde_json::{Value, json};

use super::{Completion, LlmProvider, ModelSettings, failure, http};
use crate::Error;

/// Google Gemini (`POST {base}/v1beta/models/{model}:generateContent`).
#[derive(Clone)]
pub struct Gemini {
    http: reqwest::Client,
    base_url: String,
    key: String,
    settings: ModelSettings,
}

impl fmt::Debug for Gemini {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gemini")
            .field("base_url", &self.base_url)
            .field("key", &"[redacted]")
            .field("settings", &self.settings)
            .finish()
    }
}

/// Gemini's API base URL.
pub const GEMINI_BASE_URL: &str = "https://generativelanguage.googleapis.com";

impl Gemini {
    /// A client with `key` against `base_url` (normally [`GEMINI_BASE_URL`]).
    pub fn new(base_url: &str, key: &str, settings: ModelSettings) -> Result<Self, Error> {
        Ok(Gemini {
            http: http("gemini")?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
            settings,
        })
    }
}

impl LlmProvider for Gemini {
    fn name(&self) -> String {
        format!("gemini/{}", self.settings.model)
    }

    async fn complete(&self, request: &Completion) -> Result<String, Error> {
        let body = json!({
            "systemInstruction": {"parts": [{"text": request.system}]},
            "contents": [{"role": "user", "parts": [{"text": request.user}]}],
            "generationConfig": {
                "temperature": self.settings.temperature,
                "maxOutputTokens": self.settings.max_output_tokens,
            },
        });
        let response = self
            .http
            .post(format!(
                "{}/v1beta/models/{}:generateContent",
                self.base_url, self.settings.model
            ))
            .header("x-goog-api-key", &self.key)
            .json(&body)
            .send()
            .await
            .map_err(|source| Error::Transport {
                provider: "gemini",
                source: source.without_url(),
            })?;
        if !response.status().is_success() {
            return Err(failure("gemini", response, |v| {
                v["error"]["message"].as_str().map(str::to_owned)
            })
            .await);
        }
        let answer: Value = response.json().await.map_err(|source| Error::Transport {
            provider: "gemini",
            source,
        })?;
        let text: String = answer["candidates"][0]["content"]["parts"]
            .as_array()
            .map(|parts| parts.iter().filter_map(|p| p["text"].as_str()).collect())
            .unwrap_or_default();
        if text.is_empty() {
            return Err(Error::Output(format!(
                "Gemini returned no text (finishReason {})",
                answer["candidates"][0]["finishReason"]
            )));
        }
        Ok(text)
    }
}

use std::fmt;

use serde_json::{Value, json};

use super::{Completion, LlmProvider, ModelSettings, failure, http};
use crate::Error;

/// The Anthropic Messages API (`POST {base}/v1/messages`).
#[derive(Clone)]
pub struct Anthropic {
    http: reqwest::Client,
    base_url: String,
    key: String,
    settings: ModelSettings,
}

impl fmt::Debug for Anthropic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Anthropic")
            .field("base_url", &self.base_url)
            .field("key", &"[redacted]")
            .field("settings", &self.settings)
            .finish()
    }
}

/// Anthropic's API base URL.
pub const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";

impl Anthropic {
    /// A client with `key` against `base_url` (normally [`ANTHROPIC_BASE_URL`]).
    pub fn new(base_url: &str, key: &str, settings: ModelSettings) -> Result<Self, Error> {
        Ok(Anthropic {
            http: http("anthropic")?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
            settings,
        })
    }
}

impl LlmProvider for Anthropic {
    fn name(&self) -> String {
        format!("anthropic/{}", self.settings.model)
    }

    async fn complete(&self, request: &Completion) -> Result<String, Error> {
        let body = json!({
            "model": self.settings.model,
            "max_tokens": self.settings.max_output_tokens,
            "temperature": self.settings.temperature,
            "system": request.system,
            "messages": [{"role": "user", "content": request.user}],
        });
        let response = self
            .http
            .post(format!("{}/v1/messages", self.base_url))
            .header("x-api-key", &self.key)
            .header("anthropic-version", "2023-06-01")
            .json(&body)
            .send()
            .await
            .map_err(|source| Error::Transport {
                provider: "anthropic",
                source: source.without_url(),
            })?;
        if !response.status().is_success() {
            return Err(failure("anthropic", response, |v| {
                v["error"]["message"].as_str().map(str::to_owned)
            })
            .await);
        }
        let answer: Value = response.json().await.map_err(|source| Error::Transport {
            provider: "anthropic",
            source,
        })?;
        let text: String = answer["content"]
            .as_array()
            .map(|blocks| {
                blocks
                    .iter()
                    .filter(|b| b["type"] == "text")
                    .filter_map(|b| b["text"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        if text.is_empty() {
            return Err(Error::Output(format!(
                "Anthropic returned no text (stop_reason {})",
                answer["stop_reason"]
            )));
        }
        Ok(text)
    }
}

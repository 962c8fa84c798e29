use std::fmt;

use serde_json::{Value, json};

use super::{Completion, LlmProvider, ModelSettings, failure, http};
use crate::Error;

/// OpenAI-compatible chat completions (`POST {base}/chat/completions`, the base including
/// its version: `https://api.openai.com/v1`, or a local server's `http://127.0.0.1:11434/v1`).
#[derive(Clone)]
pub struct OpenAiCompatible {
    http: reqwest::Client,
    base_url: String,
    key: Option<String>,
    settings: ModelSettings,
}

impl fmt::Debug for OpenAiCompatible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiCompatible")
            .field("base_url", &self.base_url)
            .field("key", &self.key.as_ref().map(|_| "[redacted]"))
            .field("settings", &self.settings)
            .finish()
    }
}

/// OpenAI's API base URL.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

impl OpenAiCompatible {
    /// A client against `base_url`, with a bearer `key` when the server needs one.
    pub fn new(base_url: &str, key: Option<&str>, settings: ModelSettings) -> Result<Self, Error> {
        Ok(OpenAiCompatible {
            http: http("openai")?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            key: key.map(str::to_owned),
            settings,
        })
    }
}

impl LlmProvider for OpenAiCompatible {
    fn name(&self) -> String {
        format!("openai/{}", self.settings.model)
    }

    async fn complete(&self, request: &Completion) -> Result<String, Error> {
        let body = json!({
            "model": self.settings.model,
            "temperature": self.settings.temperature,
            "max_tokens": self.settings.max_output_tokens,
            "messages": [
                {"role": "system", "content": request.system},
                {"role": "user", "content": request.user},
            ],
        });
        let mut builder = self
            .http
            .post(format!("{}/chat/completions", self.base_url))
            .json(&body);
        if let Some(key) = &self.key {
            builder = builder.bearer_auth(key);
        }
        let response = builder.send().await.map_err(|source| Error::Transport {
            provider: "openai",
            source: source.without_url(),
        })?;
        if !response.status().is_success() {
            return Err(failure("openai", response, |v| {
                v["error"]["message"].as_str().map(str::to_owned)
            })
            .await);
        }
        let answer: Value = response.json().await.map_err(|source| Error::Transport {
            provider: "openai",
            source,
        })?;
        answer["choices"][0]["message"]["content"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                Error::Output(format!(
                    "the chat completion has no content (finish_reason {})",
                    answer["choices"][0]["finish_reason"]
                ))
            })
    }
}

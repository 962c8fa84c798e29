//! LLM providers behind one trait, each a small `reqwest` client: [`Anthropic`] (Messages
//! API), [`OpenAiCompatible`] (chat completions: OpenAI and local servers that speak it) and
//! [`Gemini`] (`generateContent`). Keys are redacted in `Debug`.

mod anthropic;
mod gemini;
mod openai;

use std::future::Future;
use std::time::Duration;

pub use anthropic::{ANTHROPIC_BASE_URL, Anthropic};
pub use gemini::{GEMINI_BASE_URL, Gemini};
pub use openai::{OPENAI_BASE_URL, OpenAiCompatible};

use crate::Error;

/// One request to a model.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The system prompt.
    pub system: String,
    /// The user message.
    pub user: String,
}

/// Model settings shared by the providers.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSettings {
    /// The model name.
    pub model: String,
    /// Sampling temperature.
    pub temperature: f32,
    /// The most tokens the answer may take.
    pub max_output_tokens: u32,
}

/// A chat model.
pub trait LlmProvider: Send + Sync {
    /// `provider/model`, recorded with each insight.
    fn name(&self) -> String;

    /// The model's text answer to `request`.
    fn complete(&self, request: &Completion) -> impl Future<Output = Result<String, Error>> + Send;
}

fn http(provider: &'static str) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|source| Error::Transport { provider, source })
}

/// Maps a non-success answer to an error: 429 (and 529, Anthropic's overload) to
/// [`Error::RateLimited`] with `Retry-After`, else [`Error::Provider`] with the message
/// `message_of` finds in the body.
async fn failure(
    provider: &'static str,
    response: reqwest::Response,
    message_of: fn(&serde_json::Value) -> Option<String>,
) -> Error {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    if status == 429 || status == 529 {
        return Error::RateLimited {
            provider,
            retry_after,
        };
    }
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| message_of(&v))
        .unwrap_or_else(|| body.chars().take(200).collect());
    Error::Provider {
        provider,
        status,
        message,
    }
}

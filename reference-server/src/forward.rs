//! Development tools: forward verified events to a developer's machine, export the raw log to
//! a file, and replay such a file to any endpoint, re-signed.
//!
//! Forwarding is off unless configured (`FORWARD_WEBHOOKS`, each target's host also in
//! `FORWARD_ALLOWED_HOSTS`): after a new delivery commits, its exact bytes are signed with the
//! target's development secret (Standard Webhooks, the original delivery key as `webhook-id`)
//! and posted, in the background and best effort (a laptop that is off misses events; the
//! production copy is unaffected).

use std::io::{BufRead, Write};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use openphone_webhooks::SigningSecret;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::event_log::EventLog;
use crate::store::{Store, StoreError, StoredDelivery};

/// A development endpoint and the secret it verifies with.
#[derive(Clone)]
pub struct ForwardTarget {
    /// Where events go.
    pub url: reqwest::Url,
    /// The development secret they are signed with.
    pub secret: SigningSecret,
}

impl std::fmt::Debug for ForwardTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardTarget")
            .field("url", &self.url.as_str())
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// Parses `URL=whsec_...,URL=whsec_...`; every URL's host must be in `allowed_hosts`.
///
/// # Errors
/// Why an entry is unusable (never echoing a secret).
pub fn parse_targets(text: &str, allowed_hosts: &[String]) -> Result<Vec<ForwardTarget>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .enumerate()
        .map(|(index, entry)| {
            let position = index + 1;
            let (url, secret) = entry
                .split_once("=whsec_")
                .map(|(url, secret)| (url, format!("whsec_{secret}")))
                .ok_or_else(|| format!("target #{position} is not URL=whsec_SECRET"))?;
            let url = reqwest::Url::parse(url)
                .map_err(|error| format!("target #{position}: invalid URL: {error}"))?;
            let host = url.host_str().unwrap_or_default();
            if !allowed_hosts.iter().any(|allowed| allowed == host) {
                return Err(format!(
                    "target #{position}: host {host} is not in FORWARD_ALLOWED_HOSTS"
                ));
            }
            let secret = SigningSecret::parse(&secret)
                .map_err(|error| format!("target #{position}: {error}"))?;
            Ok(ForwardTarget { url, secret })
        })
        .collect()
}

/// Signs `body` for `target` and posts it; returns the status.
///
/// # Errors
/// Why it could not be posted.
pub async fn post_signed(
    http: &reqwest::Client,
    target: &ForwardTarget,
    delivery_id: &str,
    body: Vec<u8>,
    now: OffsetDateTime,
) -> Result<reqwest::StatusCode, String> {
    let headers = target
        .secret
        .sign(delivery_id, now, &body)
        .map_err(|error| format!("signing failed: {error}"))?;
    http.post(target.url.clone())
        .headers(headers)
        .body(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map(|response| response.status())
        .map_err(|error| format!("posting failed: {error}"))
}

/// The client forwarding and replays post through. It follows no redirect: the host allowlist
/// (`FORWARD_ALLOWED_HOSTS`) was checked for the target, not for wherever it points next, and
/// a 307 would re-send the signed body there. A redirect is reported as the target's answer.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

/// Forwards one new delivery to every target, in the background.
pub fn forward(targets: &[ForwardTarget], delivery_key: &str, body: &[u8], now: OffsetDateTime) {
    if targets.is_empty() {
        return;
    }
    let targets = targets.to_vec();
    let delivery_id = delivery_id(delivery_key);
    let body = body.to_vec();
    tokio::spawn(async move {
        let http = no_redirects();
        for target in &targets {
            match post_signed(&http, target, &delivery_id, body.clone(), now).await {
                Ok(status) if status.is_success() => {}
                Ok(status) => tracing::warn!(url = %target.url, %status, "forwarded event refused"),
                Err(error) => tracing::warn!(url = %target.url, %error, "event not forwarded"),
            }
        }
    });
}

/// The `webhook-id` to sign with: the delivery key without its prefix.
fn delivery_id(delivery_key: &str) -> String {
    delivery_key
        .split_once(':')
        .map_or(delivery_key, |(_, id)| id)
        .to_owned()
}

/// One line of an export file (JSON Lines).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedEvent {
    /// Row id in the log.
    pub id: i64,
    /// The deduplication key.
    pub delivery_key: String,
    /// `legacy`, `standard` or `import`.
    pub scheme: String,
    /// The event type.
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// When it was received (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// The exact bytes, base64.
    pub body_base64: String,
}

/// Writes the raw log (oldest first, of `event_type` when given, received at or after
/// `since`) to `out` as JSON Lines; returns how many events it wrote.
///
/// # Errors
/// [`StoreError::Backend`] when reading fails, or the write error.
pub async fn export(
    store: &Store,
    event_type: Option<&str>,
    since: Option<OffsetDateTime>,
    out: &mut dyn Write,
) -> Result<u64, ExportError> {
    let since = since.unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let mut after = 0;
    let mut written = 0;
    loop {
        let page = EventLog::ascending(store, event_type, after, since, 500).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for event in page {
            write_line(out, event)?;
            written += 1;
        }
    }
    Ok(written)
}

fn write_line(out: &mut dyn Write, event: StoredDelivery) -> Result<(), ExportError> {
    let line = ExportedEvent {
        id: event.id,
        delivery_key: event.delivery_key,
        scheme: event.scheme,
        event_type: event.event_type,
        received_at: event.received_at,
        body_base64: STANDARD.encode(&event.body),
    };
    serde_json::to_writer(&mut *out, &line).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// Reading the log failed.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// Writing failed.
    #[error("writing: {0}")]
    Io(#[from] std::io::Error),
    /// A line of a replay file is not an exported event.
    #[error("line {line}: {reason}")]
    Format {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayOutcome {
    /// Events accepted (2xx).
    pub accepted: u64,
    /// Events refused or not delivered, with the reason.
    pub failed: Vec<String>,
}

/// Posts every event of an export file to `target`, re-signed, in file order.
///
/// # Errors
/// [`ExportError::Format`] for a malformed line (nothing after it is sent), or the read
/// error.
pub async fn replay_file(
    input: &mut dyn BufRead,
    target: &ForwardTarget,
    now: OffsetDateTime,
) -> Result<ReplayOutcome, ExportError> {
    let http = no_redirects();
    let mut outcome = ReplayOutcome::default();
    for (index, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let format = |reason: String| ExportError::Format {
            line: index + 1,
            reason,
        };
        let event: ExportedEvent =
            serde_json::from_str(&line).map_err(|error| format(error.to_string()))?;
        let body = STANDARD
            .decode(&event.body_base64)
            .map_err(|error| format(format!("body_base64: {error}")))?;
        match post_signed(&http, target, &delivery_id(&event.delivery_key), body, now).await {
            Ok(status) if status.is_success() => outcome.accepted += 1,
            Ok(status) => outcome
                .failed
                .push(format!("{}: answered {status}", event.delivery_key)),
            Err(error) => outcome
                .failed
                .push(format!("{}: {error}", event.delivery_key)),
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_need_an_allowed_host_and_a_standard_secret() {
        let allowed = vec!["dev.example.com".to_owned()];
        let targets = parse_targets(
            "https://dev.example.com/hook=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            &allowed,
        )
        .unwrap();
        assert_eq!(targets[0].url.as_str(), "https://dev.example.com/hook");
        assert!(!format!("{targets:?}").contains("MfKQ9r8"));
        let error = parse_targets(
            "https://evil.example.com/x=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            &allowed,
        )
        .unwrap_err();
        assert!(error.contains("FORWARD_ALLOWED_HOSTS"), "{error}");
        let error = parse_targets("https://dev.example.com/x=not-a-secret!", &allowed).unwrap_err();
        assert!(!error.contains("not-a-secret"), "{error}");
        assert!(parse_targets("https://dev.example.com/x", &allowed).is_err());
        assert_eq!(delivery_id("webhook-id:msg_1"), "msg_1");
        assert_eq!(delivery_id("event:EV1"), "EV1");
    }
}

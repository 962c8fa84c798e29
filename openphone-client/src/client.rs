//! The client: configuration, and one place where every request is limited, sent, retried
//! and decoded.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::Method;
use serde::de::DeserializeOwned;

use crate::error::{self, Error};
use crate::limiter::{self, Limiter, RateLimit};
use crate::retry::{Decision, Failure, RetryPolicy, parse_retry_after};

/// The default base URL of the API.
pub const DEFAULT_BASE_URL: &str = "https://api.quo.com";

/// The version header value of the dated API this client reads from.
pub(crate) const API_VERSION_2026_03_30: &str = "2026-03-30";

/// An OpenPhone API client. Cheap to clone; clones share the connection pool and, with every
/// other client for the same API key in the process, one rate limiter.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
    limiter: Arc<Limiter>,
    retry: RetryPolicy,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_url)
            .field("api_key", &"[redacted]")
            .field("rate_limit", &self.inner.limiter.limit())
            .field("retry", &self.inner.retry)
            .finish()
    }
}

/// Builds a [`Client`].
pub struct ClientBuilder {
    api_key: String,
    base_url: String,
    rate_limit: RateLimit,
    retry: RetryPolicy,
    timeout: Duration,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("api_key", &"[redacted]")
            .field("base_url", &self.base_url)
            .field("rate_limit", &self.rate_limit)
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ClientBuilder {
    /// Sets the base URL (default `https://api.quo.com`), e.g. the simulator's address.
    #[must_use]
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into().trim_end_matches('/').to_owned();
        self
    }

    /// Sets the key's rate limit (default 10 requests per second). Accounts with a raised
    /// limit set theirs here. The first client built for a key in the process decides.
    #[must_use]
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = limit;
        self
    }

    /// Sets the retry policy (default: 4 retries, 0.5 s doubling backoff up to 30 s).
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Sets the timeout of each attempt (default 30 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`Error::Config`] when the API key is empty or cannot be a header, the base URL is not
    /// `http(s)://`, or the HTTP client cannot be built.
    pub fn build(self) -> Result<Client, Error> {
        if self.api_key.trim().is_empty() {
            return Err(Error::Config("the API key is empty".to_owned()));
        }
        if http::HeaderValue::from_str(&self.api_key).is_err() {
            return Err(Error::Config(
                "the API key contains characters a header cannot carry".to_owned(),
            ));
        }
        let parsed = reqwest::Url::parse(&self.base_url).map_err(|error| {
            Error::Config(format!(
                "the base URL {} is not a URL: {error}",
                self.base_url
            ))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(Error::Config(format!(
                "the base URL must be http:// or https:// with a host, got {}",
                self.base_url
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .user_agent(concat!("openphone-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| Error::Config(format!("HTTP client: {error}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                limiter: limiter::for_key(&self.api_key, self.rate_limit),
                api_key: self.api_key,
                base_url: self.base_url,
                retry: self.retry,
            }),
        })
    }
}

/// One request, described before it is sent.
#[derive(Debug)]
pub(crate) struct Request {
    pub method: Method,
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<serde_json::Value>,
    /// Whether sending it twice has the effect of sending it once.
    pub idempotent: bool,
    /// `Quo-Api-Version` for the dated API; `None` for v1.
    pub api_version: Option<&'static str>,
}

impl Request {
    pub(crate) fn get(path: impl Into<String>) -> Self {
        Self {
            method: Method::GET,
            path: path.into(),
            query: Vec::new(),
            body: None,
            idempotent: true,
            api_version: None,
        }
    }

    pub(crate) fn delete(path: impl Into<String>) -> Self {
        Self {
            method: Method::DELETE,
            ..Self::get(path)
        }
    }

    /// A POST whose repetition has no further effect (marking a conversation read).
    pub(crate) fn post_idempotent(path: impl Into<String>) -> Self {
        Self {
            method: Method::POST,
            ..Self::get(path)
        }
    }

    /// A POST that creates something: never retried after it may have been sent.
    pub(crate) fn post(path: impl Into<String>, body: serde_json::Value) -> Self {
        Self {
            method: Method::POST,
            body: Some(body),
            idempotent: false,
            ..Self::get(path)
        }
    }

    pub(crate) fn patch(path: impl Into<String>, body: serde_json::Value) -> Self {
        // PATCH replaces the fields it names with the same values each time.
        Self {
            method: Method::PATCH,
            body: Some(body),
            ..Self::get(path)
        }
    }

    pub(crate) fn query(mut self, key: &'static str, value: impl ToString) -> Self {
        self.query.push((key, value.to_string()));
        self
    }

    pub(crate) fn query_opt(self, key: &'static str, value: Option<impl ToString>) -> Self {
        match value {
            Some(value) => self.query(key, value),
            None => self,
        }
    }

    pub(crate) fn dated(mut self) -> Self {
        self.api_version = Some(API_VERSION_2026_03_30);
        self
    }
}

impl Client {
    /// A client for `api_key` with every default.
    ///
    /// # Errors
    /// As for [`ClientBuilder::build`].
    pub fn new(api_key: impl Into<String>) -> Result<Self, Error> {
        Self::builder(api_key).build()
    }

    /// A builder for a client for `api_key`.
    pub fn builder(api_key: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            api_key: api_key.into(),
            base_url: DEFAULT_BASE_URL.to_owned(),
            rate_limit: RateLimit::default(),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
        }
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// Sends a request and decodes its 2xx body. A non-idempotent request whose success
    /// answer cannot be read took effect: that is reported as ambiguous, not as a failure.
    pub(crate) async fn execute<T: DeserializeOwned>(&self, request: Request) -> Result<T, Error> {
        let (status, body) = self.send(&request).await?;
        decode(status, &body).map_err(|error| {
            if request.idempotent {
                error
            } else {
                Error::Ambiguous {
                    reason: "the API accepted the request but its answer could not be read"
                        .to_owned(),
                    source: Box::new(error),
                }
            }
        })
    }

    /// Sends a request whose success has no body worth reading (204).
    pub(crate) async fn execute_empty(&self, request: Request) -> Result<(), Error> {
        self.send(&request).await.map(|_| ())
    }

    /// Sends with the limiter and the retry policy; returns the status and body of a 2xx.
    async fn send(&self, request: &Request) -> Result<(u16, String), Error> {
        let url = format!("{}{}", self.inner.base_url, request.path);
        let mut attempt = 0;
        loop {
            self.inner.limiter.acquire().await;
            let mut builder = self
                .inner
                .http
                .request(request.method.clone(), &url)
                .header(http::header::AUTHORIZATION, &self.inner.api_key)
                .query(&request.query);
            if let Some(version) = request.api_version {
                builder = builder.header("Quo-Api-Version", version);
            }
            if let Some(body) = &request.body {
                builder = builder.json(body);
            }
            let (failure, error, retry_after) = match builder.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get(http::header::RETRY_AFTER)
                        .and_then(|value| value.to_str().ok())
                        .and_then(|value| parse_retry_after(value, SystemTime::now()));
                    let body = response.text().await;
                    match (status, body) {
                        (200..=299, Ok(body)) => return Ok((status, body)),
                        // Refused before processing, whatever became of the body.
                        (429, _) => (
                            Failure::Status(429),
                            Error::RateLimited {
                                retry_after,
                                attempts: attempt + 1,
                            },
                            retry_after,
                        ),
                        (503, body) => (
                            Failure::Status(503),
                            error::from_response(503, body.as_deref().unwrap_or_default()),
                            retry_after,
                        ),
                        (_, Ok(body)) => (
                            Failure::Status(status),
                            error::from_response(status, &body),
                            retry_after,
                        ),
                        (_, Err(source)) => (Failure::AfterSend, transport(source), None),
                    }
                }
                Err(source) if source.is_builder() || source.is_redirect() => {
                    (Failure::Unsendable, Error::Transport(source), None)
                }
                Err(source) if source.is_connect() => (Failure::Connect, transport(source), None),
                Err(source) => (Failure::AfterSend, transport(source), None),
            };
            let decision = self.inner.retry.decide(
                attempt,
                request.idempotent,
                failure,
                retry_after,
                fastrand::f64(),
            );
            match decision {
                Decision::Retry(delay) => {
                    tracing::debug!(
                        method = %request.method,
                        path = %request.path,
                        attempt,
                        ?failure,
                        ?delay,
                        "retrying OpenPhone request"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Decision::Stop => return Err(ambiguous_if_unsent_unknown(request, failure, error)),
            }
        }
    }
}

fn transport(source: reqwest::Error) -> Error {
    if source.is_timeout() {
        Error::Timeout
    } else {
        Error::Transport(source)
    }
}

/// A non-idempotent request that failed after it may have been processed is reported as
/// ambiguous: timeouts, broken connections and server errors other than 503.
fn ambiguous_if_unsent_unknown(request: &Request, failure: Failure, error: Error) -> Error {
    let unknown = match failure {
        Failure::AfterSend => true,
        Failure::Status(status) => (500..600).contains(&status) && status != 503,
        Failure::Connect | Failure::Unsendable => false,
    };
    if request.idempotent || !unknown {
        return error;
    }
    let reason = match &error {
        Error::Timeout => "the request timed out after it was sent".to_owned(),
        Error::Api(api) => format!("the API answered {} after receiving it", api.status),
        _ => "the connection failed after the request was sent".to_owned(),
    };
    Error::Ambiguous {
        reason,
        source: Box::new(error),
    }
}

/// Decodes a 2xx body, naming the JSON path of any mismatch.
pub(crate) fn decode<T: DeserializeOwned>(status: u16, body: &str) -> Result<T, Error> {
    let deserializer = &mut serde_json::Deserializer::from_str(body);
    serde_path_to_error::deserialize(deserializer).map_err(|error| Error::Decode {
        status,
        path: error.path().to_string(),
        reason: error.into_inner().to_string(),
        body: body.to_owned(),
    })
}

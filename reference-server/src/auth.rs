//! Bearer tokens of the management API: roles, creation, revocation, and the extractor that
//! checks them.
//!
//! A token is `rs_<id>_<secret>`: the id names it (for `token revoke`), the secret carries 244
//! random bits. Only the SHA-256 of the whole token is stored, so a copy of the database does
//! not hold usable tokens; a slow password hash is not needed for a random secret this long.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::Error;
use crate::store::{Arg, Store, StoreError};

/// What a token may do. Each role includes the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Role {
    /// Reads conversations, calls and media; answers customers.
    Support,
    /// Also reads the raw event log and the statistics.
    Operator,
    /// Everything, including the audit log.
    Admin,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Support => "support",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "support" => Some(Self::Support),
            "operator" => Some(Self::Operator),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token just created: the only time its secret is known.
pub struct NewToken {
    /// The id that names it.
    pub id: String,
    /// The full bearer token, to hand to its user.
    pub token: String,
    /// Its role.
    pub role: Role,
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken")
            .field("id", &self.id)
            .field("token", &"[redacted]")
            .field("role", &self.role)
            .finish()
    }
}

/// A stored token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TokenInfo {
    /// Its id.
    pub id: String,
    /// Its role.
    pub role: String,
    /// Its label.
    pub name: Option<String>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it was revoked, if it was.
    pub revoked_at: Option<OffsetDateTime>,
}

fn token_hash(token: &str) -> String {
    crate::ingest::hex(&Sha256::digest(token.as_bytes()))
}

/// A new token and the hash to store for it.
fn new_token(role: Role) -> (NewToken, String) {
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let token = format!("rs_{id}_{secret}");
    let hash = token_hash(&token);
    (NewToken { id, token, role }, hash)
}

/// Where the management API's tokens are kept: hashed, with a role, revocable. [`Store`]
/// keeps them in `api_tokens`; [`MemoryTokens`] in memory; both pass [`conformance::run`].
pub trait TokenStore: Clone + Send + Sync + 'static {
    /// Creates a token with `role` and an optional label; its secret is returned once.
    fn create_token(
        &self,
        role: Role,
        name: Option<&str>,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<NewToken, StoreError>> + Send;

    /// Revokes the token with this id; `false` when there is none (or it was revoked).
    fn revoke_token(
        &self,
        id: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Every token, oldest first, without secrets.
    fn tokens(&self) -> impl Future<Output = Result<Vec<TokenInfo>, StoreError>> + Send;

    /// The live token matching `token`: its id and role.
    fn authenticate(
        &self,
        token: &str,
    ) -> impl Future<Output = Result<Option<(String, Role)>, StoreError>> + Send;
}

impl TokenStore for Store {
    async fn create_token(
        &self,
        role: Role,
        name: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<NewToken, StoreError> {
        let (token, hash) = new_token(role);
        self.execute(
            "INSERT INTO api_tokens (id, token_hash, role, name, created_at) VALUES ($1, $2, $3, $4, $5)",
            &[
                token.id.clone().into(),
                hash.into(),
                role.as_str().into(),
                name.map(str::to_owned).into(),
                now.into(),
            ],
        )
        .await?;
        Ok(token)
    }

    async fn revoke_token(&self, id: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
        let changed = self
            .execute(
                "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                &[now.into(), id.into()],
            )
            .await?;
        Ok(changed > 0)
    }

    async fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        self.fetch_all(
            "SELECT id, role, name, created_at, revoked_at FROM api_tokens ORDER BY created_at, id",
            &[],
        )
        .await
    }

    async fn authenticate(&self, token: &str) -> Result<Option<(String, Role)>, StoreError> {
        let row: Option<(String, String)> = self
            .fetch_optional(
                "SELECT id, role FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
                &[Arg::from(token_hash(token))],
            )
            .await?;
        Ok(row.and_then(|(id, role)| Role::parse(&role).map(|role| (id, role))))
    }
}

/// Tokens in memory (hashed, like the database keeps them).
#[derive(Debug, Clone, Default)]
pub struct MemoryTokens {
    rows: Arc<Mutex<Vec<(String, TokenInfo)>>>,
}

impl MemoryTokens {
    /// No tokens.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Vec<(String, TokenInfo)>) -> T) -> T {
        f(&mut self.rows.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl TokenStore for MemoryTokens {
    async fn create_token(
        &self,
        role: Role,
        name: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<NewToken, StoreError> {
        let (token, hash) = new_token(role);
        let info = TokenInfo {
            id: token.id.clone(),
            role: role.as_str().to_owned(),
            name: name.map(str::to_owned),
            created_at: now,
            revoked_at: None,
        };
        self.with(|rows| rows.push((hash, info)));
        Ok(token)
    }

    async fn revoke_token(&self, id: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
        Ok(self.with(|rows| {
            match rows
                .iter_mut()
                .find(|(_, info)| info.id == id && info.revoked_at.is_none())
            {
                Some((_, info)) => {
                    info.revoked_at = Some(now);
                    true
                }
                None => false,
            }
        }))
    }

    async fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let mut tokens: Vec<TokenInfo> =
            self.with(|rows| rows.iter().map(|(_, info)| info.clone()).collect());
        tokens.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(tokens)
    }

    async fn authenticate(&self, token: &str) -> Result<Option<(String, Role)>, StoreError> {
        let hash = token_hash(token);
        Ok(self.with(|rows| {
            rows.iter()
                .find(|(stored, info)| *stored == hash && info.revoked_at.is_none())
                .and_then(|(_, info)| Role::parse(&info.role).map(|role| (info.id.clone(), role)))
        }))
    }
}

/// The suite every [`TokenStore`] must pass.
pub mod conformance {
    use time::macros::datetime;

    use super::{Role, TokenStore};

    /// Runs every case on `tokens`, which must hold no token.
    pub async fn run<T: TokenStore>(tokens: T) {
        let t0 = datetime!(2026-04-13 12:00 UTC);
        assert!(
            tokens.tokens().await.expect("list").is_empty(),
            "must start empty"
        );
        let admin = tokens
            .create_token(Role::Admin, Some("ops"), t0)
            .await
            .expect("create");
        let support = tokens
            .create_token(Role::Support, None, t0 + time::Duration::minutes(1))
            .await
            .expect("create");
        assert_ne!(admin.token, support.token);
        assert!(admin.token.starts_with(&format!("rs_{}_", admin.id)));
        assert_eq!(
            tokens.authenticate(&admin.token).await.expect("auth"),
            Some((admin.id.clone(), Role::Admin))
        );
        assert_eq!(
            tokens.authenticate(&support.token).await.expect("auth"),
            Some((support.id.clone(), Role::Support))
        );
        for wrong in ["", "rs_x_y", &format!("{}x", admin.token), &admin.id] {
            assert_eq!(
                tokens.authenticate(wrong).await.expect("auth"),
                None,
                "{wrong:?}"
            );
        }
        assert!(
            !format!("{admin:?}").contains(&admin.token),
            "the secret is redacted"
        );

        let listed = tokens.tokens().await.expect("list");
        let ids: Vec<&str> = listed.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(
            ids,
            [admin.id.as_str(), support.id.as_str()],
            "oldest first"
        );
        assert_eq!(
            (listed[0].role.as_str(), listed[0].name.as_deref()),
            ("admin", Some("ops"))
        );
        assert_eq!(listed[1].name, None);

        let later = t0 + time::Duration::hours(1);
        assert!(tokens.revoke_token(&admin.id, later).await.expect("revoke"));
        assert!(!tokens.revoke_token(&admin.id, later).await.expect("again"));
        assert!(!tokens.revoke_token("nope", later).await.expect("unknown"));
        assert_eq!(tokens.authenticate(&admin.token).await.expect("auth"), None);
        assert!(
            tokens
                .authenticate(&support.token)
                .await
                .expect("auth")
                .is_some()
        );
        let listed = tokens.tokens().await.expect("list");
        assert_eq!(listed[0].revoked_at, Some(later));
        assert_eq!(listed[1].revoked_at, None);
    }
}

/// The authenticated caller of a management endpoint. Extracting it answers 401 when the
/// `Authorization: Bearer` header is missing, malformed, unknown or revoked.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's id (for audit logs).
    pub token_id: String,
    /// The token's role.
    pub role: Role,
}

impl Caller {
    /// Allows the request when the caller's role is `role` or above; 403 otherwise.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when the role is insufficient.
    pub fn require(&self, role: Role) -> Result<(), Error> {
        if self.role >= role {
            Ok(())
        } else {
            Err(Error::Forbidden(role))
        }
    }
}

impl<S> FromRequestParts<S> for Caller
where
    Store: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            // The scheme's name is case-insensitive (RFC 9110, section 11.1).
            .and_then(|value| {
                let (scheme, token) = value.trim_start().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then_some(token)
            })
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or(Error::Unauthorized)?;
        let store = Store::from_ref(state);
        let (token_id, role) = store
            .authenticate(token)
            .await?
            .ok_or(Error::Unauthorized)?;
        Ok(Self { token_id, role })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_tokens_pass_the_conformance_suite() {
        conformance::run(MemoryTokens::new()).await;
    }

    #[test]
    fn roles_are_ordered_and_round_trip() {
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::Support);
        for role in [Role::Support, Role::Operator, Role::Admin] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn new_tokens_never_show_their_secret_in_debug() {
        let token = NewToken {
            id: "abc".into(),
            token: "rs_abc_supersecret".into(),
            role: Role::Admin,
        };
        assert!(!format!("{token:?}").contains("supersecret"));
    }
}

//! Bearer tokens of the management API: roles, creation, revocation, and the extractor that
//! checks them.
//!
//! A token is `rs_<id>_<secret>`: the id names it (for `token revoke`), the secret carries 244
//! random bits. Only the SHA-256 of the whole token is stored, so a copy of the database does
//! not hold usable tokens; a slow password hash is not needed for a random secret this long.

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

impl Store {
    /// Creates a token with `role` and an optional label.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the write fails.
    pub async fn create_token(
        &self,
        role: Role,
        name: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<NewToken, StoreError> {
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let secret = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let token = format!("rs_{id}_{secret}");
        self.execute(
            "INSERT INTO api_tokens (id, token_hash, role, name, created_at) VALUES ($1, $2, $3, $4, $5)",
            &[
                id.clone().into(),
                token_hash(&token).into(),
                role.as_str().into(),
                name.map(str::to_owned).into(),
                now.into(),
            ],
        )
        .await?;
        Ok(NewToken { id, token, role })
    }

    /// Revokes the token with this id; `false` when there is none (or it was revoked).
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the write fails.
    pub async fn revoke_token(&self, id: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
        let changed = self
            .execute(
                "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                &[now.into(), id.into()],
            )
            .await?;
        Ok(changed > 0)
    }

    /// Every token, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the read fails.
    pub async fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        self.fetch_all(
            "SELECT id, role, name, created_at, revoked_at FROM api_tokens ORDER BY created_at, id",
            &[],
        )
        .await
    }

    /// The live token matching `token`: its id and role.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the read fails.
    pub async fn authenticate(&self, token: &str) -> Result<Option<(String, Role)>, StoreError> {
        let row: Option<(String, String)> = self
            .fetch_optional(
                "SELECT id, role FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
                &[Arg::from(token_hash(token))],
            )
            .await?;
        Ok(row.and_then(|(id, role)| Role::parse(&role).map(|role| (id, role))))
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
            .and_then(|value| value.strip_prefix("Bearer "))
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

//! Client backends' API keys: high-entropy random strings, stored as SHA-256 digests (not
//! argon2: they are checked on every request, and a 256-bit random key needs no stretching),
//! each bound to a company and the platforms it may speak for, and revocable.
//!
//! The `api_keys` table belongs to login-intake, which creates and revokes keys; the verifier
//! reads it here to authenticate its callers.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use rand::{rngs::OsRng, RngCore};
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{bearer_token, error_response};
use shared::domain::{CompanyId, Platform};

/// What a valid key lets its holder do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientKey {
    pub key_id: Uuid,
    pub company_id: CompanyId,
    pub platforms: Vec<Platform>,
}

impl ClientKey {
    pub fn allows(&self, platform: Platform) -> bool {
        self.platforms.contains(&platform)
    }
}

/// Prefix of every key, so a leaked one is easy to recognise (e.g. by secret scanners).
pub const KEY_PREFIX: &str = "amfa_";

pub fn digest(raw: &str) -> Vec<u8> {
    Sha256::digest(raw.as_bytes()).to_vec()
}

/// A new random key (256 bits from the OS generator): the raw key, to show once, and what to
/// store.
pub fn generate() -> (SecretString, Vec<u8>, String) {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let raw = format!("{KEY_PREFIX}{}", hex::encode(bytes));
    let digest = digest(&raw);
    let prefix = raw[..KEY_PREFIX.len() + 6].to_owned();
    (SecretString::from(raw), digest, prefix)
}

#[derive(Clone)]
pub struct ApiKeyStore {
    pool: PgPool,
}

impl ApiKeyStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The key's grants, or None for an unknown or revoked key. The lookup is by digest, so
    /// the time it takes says nothing about how close a guess was.
    pub async fn authenticate(&self, raw: &str) -> Result<Option<ClientKey>, sqlx::Error> {
        let row: Option<(Uuid, String, Vec<String>)> = sqlx::query_as(
            "SELECT key_id, company_id, platforms FROM api_keys WHERE digest = $1 AND revoked_at IS NULL",
        )
        .bind(digest(raw))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|(key_id, company_id, platforms)| {
            Some(ClientKey {
                key_id,
                company_id: CompanyId::parse(&company_id).ok()?,
                platforms: platforms
                    .iter()
                    .filter_map(|p| Platform::parse(p))
                    .collect(),
            })
        }))
    }
}

/// Middleware: the request must carry `Authorization: Bearer <key>` with a valid key; its
/// grants are put in the request's extensions as a [`ClientKey`].
pub async fn require_client_key(
    State(store): State<ApiKeyStore>,
    mut request: Request,
    next: Next,
) -> Response {
    let presented = bearer_token(&request).map(str::to_owned);
    let Some(presented) = presented else {
        return error_response(
            StatusCode::UNAUTHORIZED,
            "missing_api_key",
            "send the API key as Authorization: Bearer <key>",
        );
    };
    match store.authenticate(&presented).await {
        Ok(Some(key)) => {
            request.extensions_mut().insert(key);
            next.run(request).await
        }
        Ok(None) => error_response(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "the API key is not valid",
        ),
        Err(error) => {
            tracing::error!(%error, "API key lookup failed");
            error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "the service is temporarily unavailable; retry shortly",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_long_random_and_prefixed() {
        let (first, first_digest, prefix) = generate();
        let (second, _, _) = generate();
        use secrecy::ExposeSecret;
        assert!(first.expose_secret().starts_with(KEY_PREFIX));
        assert_eq!(first.expose_secret().len(), KEY_PREFIX.len() + 64);
        assert_ne!(first.expose_secret(), second.expose_secret());
        assert_eq!(first_digest, digest(first.expose_secret()));
        assert!(first.expose_secret().starts_with(&prefix));
    }
}

//! Signed credentials, shared with the clients through `taquilla-proto` (so the fan app and
//! venue scanners verify ticket codes with the very code that signs them), and the ticket keys
//! the server signs codes with.

pub use taquilla_proto::signed::*;
pub use taquilla_proto::tickets::{
    KeyState, PublicKey, PublicKeys, TicketCodeError, TicketSigningKey,
};

use std::sync::{Arc, RwLock};

use crate::config::Secret;
use crate::error::{ApiError, ApiResult};
use crate::store::{RetireRefusal, Store, TicketKeyRecord};

/// The key a new database starts with.
const FIRST_KID: &str = "k1";

/// How often a node reads which key is active, so a rotation made on another node reaches it.
pub const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a key rotated out must have stopped signing before it may be retired: every node
/// has read the rotation by then (they read every [`REFRESH_EVERY`]), so none still signs with
/// a key about to be refused.
pub const RETIRE_AFTER_MS: i64 = 30_000;

/// The keys of the ticket codes the server issues (Ed25519, `taquilla_proto::tickets`). Their
/// private halves are derived from the server's secret; the store keeps which key is active.
#[derive(Debug, Clone)]
pub struct TicketKeys {
    secret: Secret,
    active: Arc<RwLock<TicketSigningKey>>,
}

impl TicketKeys {
    /// Keys derived from `secret`, signing with the first key until [`TicketKeys::refresh`]
    /// reads the store.
    pub fn new(secret: Secret) -> TicketKeys {
        let first = TicketSigningKey::derive(secret.expose().as_bytes(), FIRST_KID);
        TicketKeys {
            secret,
            active: Arc::new(RwLock::new(first)),
        }
    }

    /// The key that signs new tickets now.
    pub fn signer(&self) -> TicketSigningKey {
        match self.active.read() {
            Ok(key) => key.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The legacy (HMAC) key of one event's `tq1` codes, issued before Ed25519 codes.
    pub fn legacy_key(&self, event_id: &str) -> [u8; 32] {
        ticket_key(self.secret.expose().as_bytes(), event_id)
    }

    /// Reads the keys from the store (making the first one on a new database) and signs with
    /// the active one from now on.
    pub async fn refresh(&self, store: &dyn Store, now_ms: i64) -> ApiResult<Vec<TicketKeyRecord>> {
        let mut keys = store.ticket_keys().await?;
        if keys.is_empty() {
            store.first_ticket_key(FIRST_KID, now_ms).await?;
            keys = store.ticket_keys().await?;
        }
        if let Some(active) = keys.iter().find(|k| k.state == KeyState::Active.name()) {
            let mut current = match self.active.write() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            if current.kid() != active.kid {
                *current = TicketSigningKey::derive(self.secret.expose().as_bytes(), &active.kid);
            }
        }
        Ok(keys)
    }

    /// Every key's public half and state: what door scanners need, and nothing they could sign
    /// with.
    pub async fn public_keys(&self, store: &dyn Store, now_ms: i64) -> ApiResult<PublicKeys> {
        let records = self.refresh(store, now_ms).await?;
        let keys = records
            .into_iter()
            .map(|record| {
                let state = KeyState::from_name(&record.state).ok_or_else(|| {
                    ApiError::Internal(format!(
                        "ticket key {} has the unknown state {:?}",
                        record.kid, record.state
                    ))
                })?;
                Ok(PublicKey {
                    public_key: TicketSigningKey::derive(
                        self.secret.expose().as_bytes(),
                        &record.kid,
                    )
                    .public_key(),
                    kid: record.kid,
                    state,
                    created_at_ms: record.created_at_ms,
                    retired_at_ms: record.retired_at_ms,
                })
            })
            .collect::<ApiResult<Vec<_>>>()?;
        Ok(PublicKeys::new(keys))
    }

    /// Starts signing with a new key (`k<N+1>`); the key active until now keeps verifying the
    /// codes it signed. Returns the new key's id.
    pub async fn rotate(&self, store: &dyn Store, now_ms: i64) -> ApiResult<String> {
        let keys = self.refresh(store, now_ms).await?;
        let next = keys
            .iter()
            .filter_map(|k| k.kid.strip_prefix('k')?.parse::<u64>().ok())
            .max()
            .unwrap_or(0)
            + 1;
        let kid = format!("k{next}");
        store
            .rotate_ticket_key(&kid, now_ms)
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Conflict(_) => ApiError::Aborted(
                    "another rotation of the ticket keys happened at the same moment; list the keys and try again if still needed"
                        .into(),
                ),
                other => other.into(),
            })?;
        self.refresh(store, now_ms).await?;
        Ok(kid)
    }

    /// Retires a key rotated out: codes it signed are refused from now on.
    pub async fn retire(&self, store: &dyn Store, kid: &str, now_ms: i64) -> ApiResult<()> {
        taquilla_proto::tickets::check_kid(kid).map_err(ApiError::InvalidArgument)?;
        let keys = self.refresh(store, now_ms).await?;
        // The key stopped signing when the key after it became active.
        let rotated_out_at = keys
            .iter()
            .skip_while(|k| k.kid != kid)
            .nth(1)
            .map(|next| next.created_at_ms);
        if let Some(at) = rotated_out_at
            && now_ms - at < RETIRE_AFTER_MS
        {
            return Err(ApiError::FailedPrecondition(format!(
                "key {kid} stopped signing {} s ago; other nodes may still be signing with it for a few seconds, so retire it {} s from now",
                (now_ms - at) / 1_000,
                (RETIRE_AFTER_MS - (now_ms - at) + 999) / 1_000
            )));
        }
        match store.retire_ticket_key(kid, now_ms).await? {
            Ok(()) => Ok(()),
            Err(RetireRefusal::NotFound) => Err(ApiError::NotFound(format!(
                "there is no ticket key {kid:?}"
            ))),
            Err(RetireRefusal::Active) => Err(ApiError::FailedPrecondition(format!(
                "key {kid} signs new tickets; rotate to a new key first (taquilla-ops tickets keys rotate)"
            ))),
            Err(RetireRefusal::AlreadyRetired) => Err(ApiError::FailedPrecondition(format!(
                "key {kid} is already retired"
            ))),
        }
    }
}

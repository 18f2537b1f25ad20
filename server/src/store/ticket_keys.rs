//! The keys that sign ticket codes: their ids, states and dates (never their private halves,
//! which are derived from the service's secret; see `taquilla_proto::tickets`).

use sqlx::FromRow;

use super::StoreError;
use super::sql::{Affected, SqlStore, sql_impl};

/// A ticket key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketKeyRecord {
    pub kid: String,
    /// "active", "verifying" or "retired" (`taquilla_proto::tickets::KeyState`).
    pub state: String,
    pub created_at_ms: i64,
    pub retired_at_ms: Option<i64>,
}

#[derive(Debug, FromRow)]
pub(crate) struct TicketKeyRow {
    kid: String,
    state: String,
    created_at: i64,
    retired_at: Option<i64>,
}

/// Why a key could not be retired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetireRefusal {
    NotFound,
    /// The key signs new tickets: rotate first.
    Active,
    AlreadyRetired,
}

sql_impl! {
    impl<DB> SqlStore<DB> {
        pub(super) async fn sql_ticket_keys(&self) -> Result<Vec<TicketKeyRecord>, StoreError> {
            let rows: Vec<TicketKeyRow> = sqlx::query_as(
                "SELECT kid, state, created_at, retired_at FROM ticket_keys ORDER BY created_at, kid",
            )
            .fetch_all(&self.reader)
            .await?;
            Ok(rows
                .into_iter()
                .map(|r| TicketKeyRecord {
                    kid: r.kid,
                    state: r.state,
                    created_at_ms: r.created_at,
                    retired_at_ms: r.retired_at,
                })
                .collect())
        }

        pub(super) async fn sql_first_ticket_key(
            &self,
            kid: &str,
            now_ms: i64,
        ) -> Result<(), StoreError> {
            // Several nodes starting at once may all try; the key id and the one-active index
            // let exactly one insert land.
            sqlx::query(
                "INSERT INTO ticket_keys (kid, state, created_at) \
                 SELECT $1, 'active', $2 WHERE NOT EXISTS (SELECT 1 FROM ticket_keys) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(kid)
            .bind(now_ms)
            .execute(&self.writer)
            .await?;
            Ok(())
        }

        pub(super) async fn sql_rotate_ticket_key(
            &self,
            new_kid: &str,
            now_ms: i64,
        ) -> Result<(), StoreError> {
            let mut tx = self.writer.begin().await?;
            sqlx::query("UPDATE ticket_keys SET state = 'verifying' WHERE state = 'active'")
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO ticket_keys (kid, state, created_at) VALUES ($1, 'active', $2)")
                .bind(new_kid)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        }

        pub(super) async fn sql_retire_ticket_key(
            &self,
            kid: &str,
            now_ms: i64,
        ) -> Result<Result<(), RetireRefusal>, StoreError> {
            let retired = sqlx::query(
                "UPDATE ticket_keys SET state = 'retired', retired_at = $2 \
                 WHERE kid = $1 AND state = 'verifying'",
            )
            .bind(kid)
            .bind(now_ms)
            .execute(&self.writer)
            .await?;
            if retired.affected() == 1 {
                return Ok(Ok(()));
            }
            let keys = self.sql_ticket_keys().await?;
            Ok(Err(match keys.iter().find(|k| k.kid == kid) {
                None => RetireRefusal::NotFound,
                Some(k) if k.state == "active" => RetireRefusal::Active,
                Some(_) => RetireRefusal::AlreadyRetired,
            }))
        }
    }
}

//! Bans of fingerprints and addresses, kept across restarts.

use sqlx::FromRow;

use super::StoreError;
use super::sql::{SqlStore, sql_impl};

#[derive(Debug, FromRow)]
pub(crate) struct BanRow {
    pub(super) kind: String,
    pub(super) value: String,
}

sql_impl! {
    impl<DB> SqlStore<DB> {
        pub(super) async fn sql_add_ban(
            &self,
            kind: &str,
            value: &str,
            reason: &str,
            now_ms: i64,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO bans (kind, value, reason, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (kind, value) DO NOTHING",
            )
            .bind(kind)
            .bind(value)
            .bind(reason)
            .bind(now_ms)
            .execute(&self.writer)
            .await?;
            Ok(())
        }

        pub(super) async fn sql_list_bans(&self) -> Result<Vec<(String, String)>, StoreError> {
            let rows: Vec<BanRow> = sqlx::query_as("SELECT kind, value FROM bans")
                .fetch_all(&self.reader)
                .await?;
            Ok(rows.into_iter().map(|r| (r.kind, r.value)).collect())
        }
    }
}

//! For the tests of the server and of its clients: a PostgreSQL database made for one test.
//! (The in-process server they start is [`crate::app::LocalServer`].)

use sqlx::Connection;

/// The PostgreSQL server tests use: `TAQUILLA_TEST_PG_URL`, or the local default.
pub fn pg_admin_url() -> String {
    std::env::var("TAQUILLA_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh PostgreSQL database for one test.
#[derive(Debug)]
pub struct PgDatabase {
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    /// Creates `taquilla_test_<uuid>` on [`pg_admin_url`]; panics with the reason if PostgreSQL
    /// is not reachable (a test that needs it cannot run without it).
    pub async fn create() -> PgDatabase {
        let admin = pg_admin_url();
        let name = format!("taquilla_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL must be reachable at {admin} for tests: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let base = admin
            .rsplit_once('/')
            .map(|(base, _)| base)
            .unwrap_or(&admin);
        PgDatabase {
            url: format!("{base}/{name}"),
            name,
        }
    }

    /// Drops the database, closing whatever still uses it.
    pub async fn drop_database(&self) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&pg_admin_url()).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn)
            .await;
        }
    }
}

/// The Redis server tests use: `TAQUILLA_TEST_REDIS_URL`, or the local default.
pub fn redis_url() -> String {
    std::env::var("TAQUILLA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A Redis key namespace for one test; its keys are deleted when it is dropped.
#[derive(Debug)]
pub struct RedisNamespace {
    pub name: String,
}

impl RedisNamespace {
    pub fn new() -> RedisNamespace {
        RedisNamespace {
            name: format!("tqtest-{}", uuid::Uuid::new_v4().simple()),
        }
    }
}

impl Default for RedisNamespace {
    fn default() -> Self {
        RedisNamespace::new()
    }
}

impl Drop for RedisNamespace {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(redis_url()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.name))
            .query(&mut conn)
            .unwrap_or_default();
        for chunk in keys.chunks(500) {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(chunk).query(&mut conn);
        }
    }
}

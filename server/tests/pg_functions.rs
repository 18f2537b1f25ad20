//! The PostgreSQL store's functions have one definition (`migrations/postgres-functions.sql`):
//! a migrated database holds exactly the functions that file defines, with its bodies, and a
//! database whose recorded copy differs gets the file's again at the next start.

use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::Connection;
use taquilla_server::store::postgres::{FUNCTIONS, functions_digest};
use taquilla_server::store::{self, StoreOptions};
use taquilla_test_support::PgDatabase;

fn options() -> StoreOptions {
    StoreOptions {
        max_connections: 2,
        connect_timeout: Duration::from_secs(10),
        call_timeout: Duration::from_secs(30),
        breaker: Default::default(),
        ca: None,
    }
}

/// Each function the file defines, by name, with its body (the text between `AS $$` and `$$;`).
fn defined_in_file() -> BTreeMap<String, String> {
    let mut defined = BTreeMap::new();
    for chunk in FUNCTIONS.split("CREATE OR REPLACE FUNCTION ").skip(1) {
        let name = chunk.split('(').next().expect("a name").trim().to_string();
        let body = chunk
            .split_once("AS $$")
            .and_then(|(_, rest)| rest.split_once("$$;"))
            .map(|(body, _)| body.to_string())
            .unwrap_or_else(|| panic!("{name} has no `AS $$ … $$;` body"));
        assert!(
            defined.insert(name.clone(), body).is_none(),
            "{name} is defined twice in the file"
        );
    }
    defined
}

/// Each `taquilla_*` function of the database, by name, with its body; fails on an overload
/// (two functions of one name), which the file cannot define.
async fn defined_in_database(url: &str) -> BTreeMap<String, String> {
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT p.proname::TEXT, p.prosrc FROM pg_proc p \
         JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname = current_schema() AND p.proname LIKE 'taquilla\\_%' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .expect("list functions");
    let mut defined = BTreeMap::new();
    for (name, body) in rows {
        assert!(
            defined.insert(name.clone(), body).is_none(),
            "the database holds two functions named {name}"
        );
    }
    defined
}

#[tokio::test]
async fn the_database_holds_exactly_the_files_functions_and_gets_them_back_when_they_differ() {
    let db = PgDatabase::create().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let opened = store::open(Some(&db.url), dir.path(), &options())
        .await
        .expect("open");
    drop(opened);

    let file = defined_in_file();
    assert!(file.contains_key("taquilla_hold") && file.contains_key("taquilla_sell"));
    let database = defined_in_database(&db.url).await;
    assert_eq!(
        database.keys().collect::<Vec<_>>(),
        file.keys().collect::<Vec<_>>(),
        "the database's functions are not the file's"
    );
    for (name, body) in &file {
        assert_eq!(&database[name], body, "{name} differs from its definition");
    }

    // A database whose functions were changed under it, and whose record no longer matches,
    // gets the file's definitions back at the next start.
    let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    let recorded: String = sqlx::query_scalar("SELECT sha256 FROM taquilla_functions")
        .fetch_one(&mut conn)
        .await
        .expect("recorded digest");
    assert_eq!(recorded, functions_digest());
    sqlx::raw_sql(
        "CREATE OR REPLACE FUNCTION taquilla_within_budget(p_budget_ms BIGINT) RETURNS VOID \
         LANGUAGE plpgsql AS $$ BEGIN END $$; \
         UPDATE taquilla_functions SET sha256 = 'an older file'",
    )
    .execute(&mut conn)
    .await
    .expect("change a function");
    assert_ne!(
        defined_in_database(&db.url).await["taquilla_within_budget"],
        file["taquilla_within_budget"]
    );
    let reopened = store::open(Some(&db.url), dir.path(), &options())
        .await
        .expect("reopen");
    drop(reopened);
    assert_eq!(
        defined_in_database(&db.url).await["taquilla_within_budget"],
        file["taquilla_within_budget"],
        "the next start did not restore the file's definition"
    );
    let recorded: String = sqlx::query_scalar("SELECT sha256 FROM taquilla_functions")
        .fetch_one(&mut conn)
        .await
        .expect("recorded digest");
    assert_eq!(recorded, functions_digest());
    drop(conn);
    db.drop_database().await;
}

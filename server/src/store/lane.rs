//! The sales path's own database connections, for its one-round-trip writes (holds, hold
//! batches, checkouts, payment starts, capture claims, sales).
//!
//! sqlx's pool gives a connection back in a task it spawns, after a round trip that checks it.
//! While a crowd keeps the runtime busy that task waits its turn behind the crowd's work, and
//! the connection is out of use all that time: in the full LUX sale PostgreSQL's backends sat
//! idle 83 % of the time while a hundred sales calls waited for them (BENCHMARKS.md, "The
//! sales path's own connections"). A [`Lane`] keeps its connections on a stack: a call takes
//! one and gives it back in place when it is done, without a task or a round trip. A
//! connection idle for [`IDLE_BEFORE_PING`] is checked before it is used again, so a database
//! restart costs no call more than it does with the pool; a connection whose call did not end
//! cleanly (the caller stopped waiting mid-call, the network failed) is closed rather than
//! given back, since its protocol state is unknown.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::{ConnectOptions, Connection, Database};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A connection idle this long is checked before it is used again.
pub(crate) const IDLE_BEFORE_PING: Duration = Duration::from_millis(100);

/// At most `size` connections, opened when first needed and kept.
pub(crate) struct Lane<DB: Database> {
    options: <DB::Connection as Connection>::Options,
    idle: Mutex<Vec<(DB::Connection, Instant)>>,
    permits: Arc<Semaphore>,
    size: usize,
    acquire_timeout: Duration,
}

impl<DB: Database> std::fmt::Debug for Lane<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lane")
            .field("size", &self.size)
            .field("in_use", &(self.size - self.permits.available_permits()))
            .finish_non_exhaustive()
    }
}

impl<DB: Database> Lane<DB> {
    /// A lane of at most `size` connections (at least one) opened with `options`. A call waits
    /// at most `acquire_timeout` for one, as it would for the pool's.
    pub(crate) fn new(
        options: <DB::Connection as Connection>::Options,
        size: usize,
        acquire_timeout: Duration,
    ) -> Arc<Lane<DB>> {
        let size = size.max(1);
        Arc::new(Lane {
            options,
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Arc::new(Semaphore::new(size)),
            size,
            acquire_timeout,
        })
    }

    /// Whether every connection is in use (a call waiting for one then waits for load, not
    /// for a database that does not answer).
    pub(crate) fn full(&self) -> bool {
        self.permits.available_permits() == 0
    }

    /// A connection: the one given back last, or a new one when none is idle. Waits for a free
    /// place at most the acquire timeout (`PoolTimedOut`, as from the pool).
    pub(crate) async fn acquire(self: &Arc<Self>) -> Result<LaneConnection<DB>, sqlx::Error> {
        let permit =
            match tokio::time::timeout(self.acquire_timeout, self.permits.clone().acquire_owned())
                .await
            {
                Ok(Ok(permit)) => permit,
                Ok(Err(_)) => return Err(sqlx::Error::PoolClosed),
                Err(_) => return Err(sqlx::Error::PoolTimedOut),
            };
        let conn = self.connection().await?;
        Ok(LaneConnection {
            lane: self.clone(),
            conn: Some(conn),
            clean: false,
            _permit: permit,
        })
    }

    async fn connection(&self) -> Result<DB::Connection, sqlx::Error> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        // One idle too long is checked first; a gone one (a restart, a dropped link) is
        // dropped, and a new one opened instead.
        if let Some((mut conn, since)) = idle
            && (since.elapsed() < IDLE_BEFORE_PING || conn.ping().await.is_ok())
        {
            return Ok(conn);
        }
        tokio::time::timeout(self.acquire_timeout, self.options.connect())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
    }

    fn give_back(&self, conn: DB::Connection) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((conn, Instant::now()));
    }
}

/// A connection of a [`Lane`], given back when dropped if its call ended cleanly
/// ([`LaneConnection::settled`]), closed otherwise.
pub(crate) struct LaneConnection<DB: Database> {
    lane: Arc<Lane<DB>>,
    /// `Some` until dropped.
    conn: Option<DB::Connection>,
    clean: bool,
    _permit: OwnedSemaphorePermit,
}

impl<DB: Database> std::fmt::Debug for LaneConnection<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaneConnection")
            .field("clean", &self.clean)
            .finish_non_exhaustive()
    }
}

impl<DB: Database> LaneConnection<DB> {
    /// The connection, for one call. Must be followed by [`LaneConnection::settled`] with the
    /// call's result, or the connection is closed when dropped.
    pub(crate) fn connection(&mut self) -> Result<&mut DB::Connection, sqlx::Error> {
        self.clean = false;
        self.conn.as_mut().ok_or(sqlx::Error::PoolClosed)
    }

    /// Records how the call ended: an answer, or an error the database sent (its protocol
    /// finished), leaves the connection fit to be given back; anything else (I/O, protocol,
    /// decoding) does not.
    pub(crate) fn settled<T>(&mut self, result: &Result<T, sqlx::Error>) {
        self.clean = matches!(result, Ok(_) | Err(sqlx::Error::Database(_)));
    }
}

impl<DB: Database> Drop for LaneConnection<DB> {
    fn drop(&mut self) {
        // Not given back unless settled clean: dropping it closes the socket, which ends the
        // server's session.
        if let Some(conn) = self.conn.take()
            && self.clean
        {
            self.lane.give_back(conn);
        }
    }
}

/// Marks a lane connection's call as settled with its own result, in a call chain.
pub(crate) trait Settle: Sized {
    fn settled<DB: Database>(self, conn: &mut LaneConnection<DB>) -> Self;
}

impl<T> Settle for Result<T, sqlx::Error> {
    fn settled<DB: Database>(self, conn: &mut LaneConnection<DB>) -> Self {
        conn.settled(&self);
        self
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use sqlx::Postgres;
    use sqlx::postgres::PgConnectOptions;

    use super::*;

    fn lane(size: usize, acquire_timeout: Duration) -> Arc<Lane<Postgres>> {
        let options =
            PgConnectOptions::from_str(&crate::testing::pg_admin_url()).expect("test database URL");
        Lane::new(options, size, acquire_timeout)
    }

    async fn backend(conn: &mut LaneConnection<Postgres>) -> i32 {
        let pid = sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()")
            .fetch_one(conn.connection().expect("connection"))
            .await
            .settled(conn);
        pid.expect("pg_backend_pid")
    }

    #[tokio::test]
    async fn a_connection_given_back_is_used_again() {
        let lane = lane(2, Duration::from_secs(5));
        let first = {
            let mut conn = lane.acquire().await.expect("connection");
            backend(&mut conn).await
        };
        let mut conn = lane.acquire().await.expect("connection");
        assert_eq!(backend(&mut conn).await, first);
    }

    #[tokio::test]
    async fn an_error_the_database_sent_leaves_the_connection_fit() {
        let lane = lane(1, Duration::from_secs(5));
        let mut conn = lane.acquire().await.expect("connection");
        let first = backend(&mut conn).await;
        let failed = sqlx::query("SELECT 1 / 0")
            .execute(conn.connection().expect("connection"))
            .await
            .settled(&mut conn);
        assert!(
            matches!(failed, Err(sqlx::Error::Database(_))),
            "{failed:?}"
        );
        drop(conn);
        let mut conn = lane.acquire().await.expect("connection");
        assert_eq!(backend(&mut conn).await, first);
    }

    /// A caller that stops waiting mid-call leaves the connection with an answer still to
    /// come: given back, the next call would read that answer first (or wait for it).
    #[tokio::test]
    async fn a_call_cut_short_closes_its_connection() {
        let lane = lane(1, Duration::from_secs(5));
        let mut conn = lane.acquire().await.expect("connection");
        let first = backend(&mut conn).await;
        let cut = tokio::time::timeout(
            Duration::from_millis(100),
            sqlx::query("SELECT pg_sleep(2)").execute(conn.connection().expect("connection")),
        )
        .await;
        assert!(cut.is_err(), "the sleep should have been cut short");
        drop(conn);
        let started = Instant::now();
        let mut conn = lane.acquire().await.expect("connection");
        assert_ne!(
            backend(&mut conn).await,
            first,
            "the cut connection came back"
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the next call waited for the cut call's answer"
        );
    }

    #[tokio::test]
    async fn a_full_lane_makes_callers_wait_then_time_out() {
        let lane = lane(1, Duration::from_millis(200));
        let mut held = lane.acquire().await.expect("connection");
        let first = backend(&mut held).await;
        assert!(lane.full());
        let waited = lane.acquire().await;
        assert!(
            matches!(waited, Err(sqlx::Error::PoolTimedOut)),
            "{waited:?}"
        );
        // A caller waiting when the connection comes back gets it.
        let waiter = {
            let lane = lane.clone();
            tokio::spawn(async move {
                let mut conn = lane.acquire().await.expect("connection");
                backend(&mut conn).await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(held);
        assert_eq!(waiter.await.expect("waiter"), first);
        assert!(!lane.full());
    }

    /// A connection the server closed while it sat idle (a restart, an administrator) is
    /// checked before use and replaced, so no call fails on it.
    #[tokio::test]
    async fn a_connection_closed_while_idle_is_replaced() {
        let lane = lane(1, Duration::from_secs(5));
        let first = {
            let mut conn = lane.acquire().await.expect("connection");
            backend(&mut conn).await
        };
        let mut admin = sqlx::PgConnection::connect(&crate::testing::pg_admin_url())
            .await
            .expect("admin connection");
        let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(first)
            .fetch_one(&mut admin)
            .await
            .expect("terminate");
        assert!(ended);
        tokio::time::sleep(IDLE_BEFORE_PING + Duration::from_millis(50)).await;
        let mut conn = lane.acquire().await.expect("connection");
        assert_ne!(backend(&mut conn).await, first);
    }
}

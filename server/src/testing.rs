//! For the tests of the server and of its clients: a PostgreSQL database made for one test.
//! (The in-process server they start is `LocalServer`, in the `app` module.)

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

/// A TCP proxy on a loopback port in front of a dependency (PostgreSQL, Redis), for fault
/// tests: [`FaultProxy::cut`] drops every open connection and refuses new ones, as a crashed or
/// restarting server would; [`FaultProxy::stall`] keeps connections open but forwards nothing,
/// as a hung server or a network dropping packets would; [`FaultProxy::restore`] lets
/// connections through again (connections that stalled are dropped then, their streams broken).
#[derive(Debug)]
pub struct FaultProxy {
    pub addr: std::net::SocketAddr,
    state: std::sync::Arc<tokio::sync::watch::Sender<Link>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Up,
    Cut,
    Stalled,
}

impl FaultProxy {
    /// Starts forwarding a loopback port to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> std::io::Result<FaultProxy> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = std::sync::Arc::new(tokio::sync::watch::Sender::new(Link::Up));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                let mut link = shared.subscribe();
                let now = *link.borrow_and_update();
                match now {
                    // Down: the connection is closed at once.
                    Link::Cut => {
                        drop(client);
                        continue;
                    }
                    // Hung: the connection is accepted and then nothing happens.
                    Link::Stalled => {
                        tokio::spawn(async move {
                            let _ = link.wait_for(|l| *l != Link::Stalled).await.is_ok();
                            drop(client);
                        });
                        continue;
                    }
                    Link::Up => {}
                }
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let stalled = tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => false,
                        changed = link.wait_for(|l| *l != Link::Up) => {
                            changed.map(|l| *l == Link::Stalled).unwrap_or(false)
                        }
                    };
                    if stalled {
                        // Hold both ends open, silent, until the link is restored or cut.
                        let _ = link.wait_for(|l| *l != Link::Stalled).await;
                    }
                });
            }
        });
        Ok(FaultProxy { addr, state, task })
    }

    /// Drops every connection through the proxy and refuses new ones.
    pub fn cut(&self) {
        self.state.send_replace(Link::Cut);
    }

    /// Keeps every connection open but forwards nothing, in either direction.
    pub fn stall(&self) {
        self.state.send_replace(Link::Stalled);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.state.send_replace(Link::Up);
    }

    /// `url` (`scheme://user@host:port/path`) with its host and port replaced by the proxy's.
    pub fn url_through(&self, url: &str) -> String {
        let Some((scheme, rest)) = url.split_once("://") else {
            return url.to_string();
        };
        let (userinfo, hostpath) = match rest.rsplit_once('@') {
            Some((user, hostpath)) => (format!("{user}@"), hostpath),
            None => (String::new(), rest),
        };
        let path = hostpath.find('/').map_or("", |i| &hostpath[i..]);
        format!("{scheme}://{userinfo}{}{path}", self.addr)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.state.send_replace(Link::Cut);
    }
}

/// The `host:port` of a URL such as `postgres://user@host:port/db`.
pub fn host_port(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let hostpath = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host = hostpath.split('/').next()?;
    Some(if host.contains(':') {
        host.to_string()
    } else if url.starts_with("redis") {
        format!("{host}:6379")
    } else {
        format!("{host}:5432")
    })
}

//! The connection pool: deadpool-postgres's manager, plus pgx's habit of pinging a connection
//! that sat idle for more than a second before handing it out, so a connection the server
//! dropped (a restart, an idle timeout) is replaced instead of failing a call.

use std::time::Duration;

use deadpool::managed::{self, Metrics, RecycleResult};
use deadpool_postgres::ClientWrapper;

/// How long a connection may sit idle before it is checked with an empty query.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Creates and checks connections.
pub(crate) struct PgManager {
    pub(crate) inner: deadpool_postgres::Manager,
}

impl std::fmt::Debug for PgManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgManager")
    }
}

impl managed::Manager for PgManager {
    type Type = ClientWrapper;
    type Error = tokio_postgres::Error;

    async fn create(&self) -> Result<ClientWrapper, tokio_postgres::Error> {
        self.inner.create().await
    }

    async fn recycle(
        &self,
        client: &mut ClientWrapper,
        metrics: &Metrics,
    ) -> RecycleResult<tokio_postgres::Error> {
        // Refuses a connection whose socket is already closed.
        self.inner.recycle(client, metrics).await?;
        if metrics.last_used() > PING_AFTER_IDLE {
            client.simple_query("").await?;
        }
        Ok(())
    }

    fn detach(&self, client: &mut ClientWrapper) {
        self.inner.detach(client);
    }
}

/// The pool.
pub(crate) type Pool = managed::Pool<PgManager>;
/// One connection taken from it.
pub(crate) type Conn = managed::Object<PgManager>;

//! tokio-postgres connections for tests: connect without TLS and drive the
//! connection future on a spawned task.

use tokio_postgres::{Client, NoTls};

/// Connects with `tokio_postgres::connect(url, NoTls)` and spawns the
/// connection task; panics with the error (and the URL) on failure.
pub async fn connect(url: &str) -> Client {
    match try_connect(url).await {
        Ok(client) => client,
        Err(e) => panic!("sluice-testkit: cannot connect to {url}: {e}"),
    }
}

/// Like [`connect`], but hands the error back.
pub async fn try_connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        // The error (if any) surfaces to the caller through the client.
        let _ = connection.await;
    });
    Ok(client)
}

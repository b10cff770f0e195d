//! The idle driver: N clients that log in (md5) through a pooler and then do
//! nothing; the pooler's RSS before and after gives its memory per client.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_postgres::{Client, Config, NoTls};

use crate::procstat;
use crate::targets::{Kind, Target};
use crate::workload::{DATABASE, MD5_USER};

/// Logins in flight at once.
const CONNECT_CONCURRENCY: usize = 64;

#[derive(Clone, Debug)]
pub struct IdleRecord {
    pub round: u32,
    pub target: Kind,
    pub requested: u32,
    pub connected: u32,
    pub failed: u32,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    /// (after − before) / connected, in bytes.
    pub bytes_per_client: f64,
    /// Clients (a sample) that ran `SELECT 1` fine after the measurement.
    pub checked_ok: u32,
    pub first_error: Option<String>,
}

pub fn client_config(port: u16) -> Config {
    let mut config = Config::new();
    config
        .host("127.0.0.1")
        .port(port)
        .user(MD5_USER.name)
        .password(MD5_USER.password)
        .dbname(DATABASE)
        .connect_timeout(Duration::from_secs(30));
    config
}

/// Connects and spawns the connection task.
pub async fn connect(config: &Config) -> Result<Client, String> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| crate::pipeline::error_text(&e))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Opens `clients` idle clients through `target` (a freshly started pooler
/// that has served one query, so its server pool exists) and measures.
pub fn run(target: &Target, clients: u32, round: u32) -> Result<IdleRecord, String> {
    let pid = target
        .pid()
        .ok_or("the idle driver measures poolers only")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    runtime.block_on(async move {
        let config = client_config(target.port);
        // Warm up: one login and query, so the pool has its server.
        let warm = connect(&config)
            .await
            .map_err(|e| format!("{}: cannot log in: {e}", target.kind.name()))?;
        warm.simple_query("SELECT 1")
            .await
            .map_err(|e| format!("{}: SELECT 1 failed: {e}", target.kind.name()))?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss_before_kib = procstat::rss_kib(pid).ok_or("pooler gone")?;

        let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
        let mut tasks = Vec::with_capacity(clients as usize);
        for _ in 0..clients {
            let gate = gate.clone();
            let config = config.clone();
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire().await.map_err(|e| e.to_string())?;
                connect(&config).await
            }));
        }
        let mut held = Vec::with_capacity(clients as usize);
        let mut first_error = None;
        for task in tasks {
            match task.await.map_err(|e| e.to_string()).and_then(|r| r) {
                Ok(client) => held.push(client),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        // Let the pooler settle (buffers of finished logins freed).
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss_after_kib = procstat::rss_kib(pid).ok_or("pooler gone")?;
        let connected = held.len() as u32;

        // The clients are real: a sample of them runs a query.
        let step = (held.len() / 20).max(1);
        let mut checked_ok = 0;
        for client in held.iter().step_by(step) {
            match client.simple_query("SELECT 1").await {
                Ok(_) => checked_ok += 1,
                Err(e) => {
                    first_error.get_or_insert(crate::pipeline::error_text(&e));
                }
            }
        }
        drop(held);
        drop(warm);
        let growth = rss_after_kib as f64 - rss_before_kib as f64;
        Ok(IdleRecord {
            round,
            target: target.kind,
            requested: clients,
            connected,
            failed: clients - connected,
            rss_before_kib,
            rss_after_kib,
            bytes_per_client: if connected > 0 {
                growth * 1024.0 / f64::from(connected)
            } else {
                0.0
            },
            checked_ok,
            first_error,
        })
    })
}

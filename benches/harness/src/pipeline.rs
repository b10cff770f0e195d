//! The pipeline driver: K tokio-postgres clients, each keeping `depth`
//! extended-protocol queries in flight (tokio-postgres pipelines the
//! requests of futures polled together on one client), for T seconds.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Client;

use crate::idle::{client_config, connect};
use crate::targets::{Kind, Target};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `query_typed`: Parse (unnamed)/Bind/Execute/Sync per query, one
    /// round trip, nothing kept on the server between transactions.
    Unnamed,
    /// `prepare` once, then `query(&statement)`: Bind/Execute/Sync of a
    /// named statement (the pooler must map it onto whichever server).
    Prepared,
}

pub const MODES: [Mode; 2] = [Mode::Unnamed, Mode::Prepared];

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Unnamed => "unnamed",
            Mode::Prepared => "prepared",
        }
    }
}

#[derive(Clone, Debug)]
pub struct PipelineRecord {
    pub round: u32,
    pub target: Kind,
    pub mode: Mode,
    pub clients: u32,
    pub depth: u32,
    pub queries: u64,
    pub errors: u64,
    pub seconds: f64,
    pub qps: f64,
    pub first_error: Option<String>,
}

const SQL: &str = "SELECT $1::int";

pub struct Params {
    pub clients: u32,
    pub depth: u32,
    pub duration: Duration,
}

pub fn run(target: &Target, mode: Mode, p: &Params, round: u32) -> Result<PipelineRecord, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    runtime.block_on(async move {
        let config = client_config(target.port);
        let mut clients = Vec::new();
        for _ in 0..p.clients {
            clients.push(
                connect(&config)
                    .await
                    .map_err(|e| format!("{}: cannot log in: {e}", target.kind.name()))?,
            );
        }
        let started = Instant::now();
        let deadline = started + p.duration;
        let depth = p.depth;
        let tasks: Vec<_> = clients
            .into_iter()
            .map(|client| tokio::spawn(drive(client, mode, depth, deadline)))
            .collect();
        let (mut queries, mut errors, mut first_error) = (0u64, 0u64, None);
        for task in tasks {
            let (q, e, err) = task.await.map_err(|e| e.to_string())?;
            queries += q;
            errors += e;
            if first_error.is_none() {
                first_error = err;
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        Ok(PipelineRecord {
            round,
            target: target.kind,
            mode,
            clients: p.clients,
            depth,
            queries,
            errors,
            seconds,
            qps: queries as f64 / seconds,
            first_error,
        })
    })
}

/// One client's loop: batches of `depth` concurrent queries until the
/// deadline. Returns (queries answered, queries failed, first error).
async fn drive(
    client: Client,
    mode: Mode,
    depth: u32,
    deadline: Instant,
) -> (u64, u64, Option<String>) {
    let (mut ok, mut failed, mut first_error) = (0u64, 0u64, None);
    let statement = match mode {
        Mode::Prepared => match client.prepare(SQL).await {
            Ok(s) => Some(s),
            Err(e) => return (0, 1, Some(error_text(&e))),
        },
        Mode::Unnamed => None,
    };
    let values: Vec<i32> = (0..depth as i32).collect();
    let plain: Vec<[&(dyn ToSql + Sync); 1]> = values.iter().map(|v| [v as _]).collect();
    let typed: Vec<[(&(dyn ToSql + Sync), Type); 1]> =
        values.iter().map(|v| [(v as _, Type::INT4)]).collect();
    while Instant::now() < deadline && !client.is_closed() {
        let results = match &statement {
            Some(stmt) => join_all(plain.iter().map(|p| client.query(stmt, p))).await,
            None => join_all(typed.iter().map(|p| client.query_typed(SQL, p))).await,
        };
        for result in results {
            match result {
                Ok(_) => ok += 1,
                Err(e) => {
                    failed += 1;
                    first_error.get_or_insert_with(|| error_text(&e));
                }
            }
        }
    }
    (ok, failed, first_error)
}

/// The server's message when there is one ("db error" alone says little).
pub fn error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

//! The churn: `total` transactions from `workers` clients that commit
//! (simple and prepared), roll back, fail inside a transaction, vanish with
//! a TCP reset mid-transaction, time out mid-query, get cancelled, sit idle
//! in a transaction past idle_transaction_timeout, and reconnect. Every
//! transaction adds one to its worker's row of `soak_counter` before it
//! commits or is lost, so the table's sum must equal the commits counted
//! here: a server handed on with a vanished client's open transaction
//! would commit it with the next client's work and break the sum.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio_postgres::{NoTls, Statement};

use crate::admin;
use crate::report::Report;
use crate::rig::{error_text, mib, superuser, Conn, Rig, IDLE_TRANSACTION_TIMEOUT, POOL_SIZE};

#[derive(Default)]
struct Stats {
    committed: AtomicU64,
    rolled_back: AtomicU64,
    failed_in_tx: AtomicU64,
    vanished: AtomicU64,
    timed_out: AtomicU64,
    idle_killed: AtomicU64,
    cancelled: AtomicU64,
    cancel_missed: AtomicU64,
    own_late_cancel: AtomicU64,
    reads: AtomicU64,
    logins: AtomicU64,
    goodbyes: AtomicU64,
    unexpected: AtomicU64,
}

struct Shared {
    total: u64,
    next: AtomicU64,
    done: AtomicU64,
    port: u16,
    stats: Stats,
    errors: Mutex<Vec<String>>,
}

impl Shared {
    fn unexpected(&self, what: &str, e: String) {
        self.stats.unexpected.fetch_add(1, Relaxed);
        let mut errs = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errs.len() < 20 {
            errs.push(format!("{what}: {e}"));
        }
    }
}

/// One worker's connection and its prepared UPDATE.
struct Worker {
    conn: Conn,
    update: Statement,
    /// A cancel of ours missed its query: it may still arrive and hit one
    /// of our later statements, as it would straight to PostgreSQL.
    late_cancel: bool,
    /// Our last transaction was a cancelled one: the cancel may also hit the
    /// statement after it. tokio-postgres does not wait for PostgreSQL to
    /// finish a cancel request (libpq does), and straight to PostgreSQL
    /// this happened twice in 9,000 cancels on this machine.
    spill: bool,
    /// The kind of this connection's previous transaction (1000: none).
    prev_kind: u64,
}

/// xorshift64*: reproducible per worker, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

pub async fn run(rig: &Rig, total: u64, workers: u32, report: &mut Report) {
    eprintln!("==> churn: {total} transactions from {workers} clients");
    let shared = Arc::new(Shared {
        total,
        next: AtomicU64::new(0),
        done: AtomicU64::new(0),
        port: rig.sluice.port,
        stats: Stats::default(),
        errors: Mutex::new(Vec::new()),
    });
    let warm_up = (total / 20).clamp(1, 50_000);
    let stop = Arc::new(AtomicBool::new(false));
    let monitor = tokio::spawn(monitor(
        superuser(&rig.cluster).await,
        rig.sluice.pid(),
        shared.clone(),
        stop.clone(),
        warm_up,
    ));
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|w| tokio::spawn(worker(w as i32, shared.clone())))
        .collect();
    for t in tasks {
        if let Err(e) = t.await {
            shared.unexpected("worker task", e.to_string());
        }
    }
    let secs = started.elapsed().as_secs_f64();
    stop.store(true, Relaxed);
    let (max_servers, rss_warm, rss_peak) = monitor.await.unwrap_or((-1, 0, 0));
    let s = &shared.stats;
    let get = |a: &AtomicU64| a.load(Relaxed);
    report.line(format!(
        "churn: {} transactions from {workers} clients in {secs:.0} s ({:.0} tx/s): {} committed \
         (a fifth of them with a prepared statement), {} rolled back, {} failed inside a transaction, {} \
         vanished mid-transaction (TCP reset), {} timed out mid-query (reset), {} ended by \
         idle_transaction_timeout, {} cancelled ({} cancels arrived too late; {} times a cancel also hit \
         its own client's next statement), {} reads; {} logins, {} clean goodbyes",
        shared.done.load(Relaxed),
        shared.done.load(Relaxed) as f64 / secs,
        get(&s.committed),
        get(&s.rolled_back),
        get(&s.failed_in_tx),
        get(&s.vanished),
        get(&s.timed_out),
        get(&s.idle_killed),
        get(&s.cancelled),
        get(&s.cancel_missed),
        get(&s.own_late_cancel),
        get(&s.reads),
        get(&s.logins),
        get(&s.goodbyes),
    ));
    let errors = shared
        .errors
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    report.check(
        get(&s.unexpected) == 0,
        format!(
            "churn: no unexpected error ({}{})",
            get(&s.unexpected),
            errors
                .first()
                .map(|e| format!(", first: {e}"))
                .unwrap_or_default()
        ),
    );
    for e in errors.iter().skip(1) {
        report.line(format!("unexpected error: {e}"));
    }
    let log = rig.sluice.log();
    let cancel_warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("for cancel") || l.contains("cancel to"))
        .collect();
    report.line(format!(
        "Sluice's log: {} warnings about forwarding cancels{}",
        cancel_warnings.len(),
        cancel_warnings
            .first()
            .map(|l| format!(" (first: {l})"))
            .unwrap_or_default()
    ));
    finish_checks(
        rig,
        get(&s.committed),
        max_servers,
        rss_warm,
        rss_peak,
        report,
    )
    .await;
}

/// After the churn: pools idle, no server left in a transaction, the sum
/// right, memory back.
async fn finish_checks(
    rig: &Rig,
    committed: u64,
    max_servers: i64,
    rss_warm: u64,
    rss_peak: u64,
    report: &mut Report,
) {
    let su = superuser(&rig.cluster).await;
    // The last resets are still being cleaned up: give it a few seconds.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (pool, backends) = loop {
        let pool = match admin::rig_pool(rig).await {
            Ok(p) => p,
            Err(e) => {
                report.check(false, format!("SHOW POOLS: {e}"));
                return;
            }
        };
        let backends = admin::backends(&su).await.unwrap_or((-1, -1));
        let settled = pool.sv_active == 0 && pool.cl_waiting == 0 && backends.1 == 0;
        if settled || Instant::now() > deadline {
            break (pool, backends);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    report.check(
        pool.sv_active == 0 && pool.cl_waiting == 0 && pool.cl_active == 0,
        format!(
            "SHOW POOLS after the churn: sv_active {}, cl_waiting {}, cl_active {}, sv_idle {}, sv_used {}",
            pool.sv_active, pool.cl_waiting, pool.cl_active, pool.sv_idle, pool.sv_used
        ),
    );
    report.check(
        max_servers >= 0
            && max_servers <= i64::from(POOL_SIZE)
            && pool.servers() <= i64::from(POOL_SIZE)
            && backends.0 <= i64::from(POOL_SIZE),
        format!(
            "server connections never above pool_size {POOL_SIZE}: at most {max_servers} in \
             pg_stat_activity during the churn, {} at the end ({} in SHOW POOLS)",
            backends.0,
            pool.servers()
        ),
    );
    report.check(
        backends.1 == 0,
        format!(
            "no `idle in transaction` backend of the soak user at the end ({})",
            backends.1
        ),
    );
    let sum: i64 = match su
        .query_one("SELECT coalesce(sum(n), 0)::bigint FROM soak_counter", &[])
        .await
    {
        Ok(r) => r.get(0),
        Err(e) => {
            report.check(false, format!("sum of soak_counter: {}", error_text(&e)));
            return;
        }
    };
    report.check(
        sum >= 0 && sum as u64 == committed,
        format!("sum of the counters {sum} = transactions committed {committed} (none lost, none leaked)"),
    );
    let rss_end = rig.rss();
    report.line(format!(
        "Sluice RSS: {:.1} MiB after warm-up, peak {:.1} MiB, {:.1} MiB at the end",
        mib(rss_warm),
        mib(rss_peak),
        mib(rss_end)
    ));
    report.check(
        rss_warm > 0 && rss_end as f64 <= rss_warm as f64 * 1.10,
        format!(
            "RSS at the end within 10% of RSS after warm-up ({:+.1}%)",
            100.0 * (rss_end as f64 - rss_warm as f64) / (rss_warm.max(1)) as f64
        ),
    );
}

/// Samples server connections and RSS until `stop`; returns (most server
/// connections seen, RSS once `warm_up` transactions were done, peak RSS).
async fn monitor(
    su: tokio_postgres::Client,
    pid: u32,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    warm_up: u64,
) -> (i64, u64, u64) {
    let mut max_servers = 0;
    let mut rss_warm = 0;
    let mut rss_peak = 0;
    let mut last = (Instant::now(), 0u64);
    let mut tick = 0u32;
    while !stop.load(Relaxed) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Ok((n, _)) = admin::backends(&su).await {
            max_servers = max_servers.max(n);
        }
        let rss = crate::rig::rss_of(pid);
        rss_peak = rss_peak.max(rss);
        let done = shared.done.load(Relaxed);
        if rss_warm == 0 && done >= warm_up {
            rss_warm = rss;
        }
        tick += 1;
        if tick == 20 {
            tick = 0;
            let tps = (done - last.1) as f64 / last.0.elapsed().as_secs_f64();
            eprintln!(
                "  {done}/{} tx, {tps:.0} tx/s, RSS {:.1} MiB, servers ≤ {max_servers}, unexpected {}",
                shared.total,
                mib(rss),
                shared.stats.unexpected.load(Relaxed)
            );
            last = (Instant::now(), done);
        }
    }
    (max_servers, rss_warm, rss_peak)
}

async fn login(sh: &Shared) -> Result<Worker, String> {
    let conn = Conn::open(
        sh.port,
        crate::rig::USER,
        crate::rig::PASSWORD,
        crate::rig::DB,
    )
    .await?;
    sh.stats.logins.fetch_add(1, Relaxed);
    let update = conn
        .client
        .prepare("UPDATE soak_counter SET n = n + 1 WHERE w = $1")
        .await
        .map_err(|e| error_text(&e))?;
    Ok(Worker {
        conn,
        update,
        late_cancel: false,
        spill: false,
        prev_kind: 1000,
    })
}

async fn worker(id: i32, sh: Arc<Shared>) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
    let mut current: Option<Worker> = None;
    loop {
        if sh.next.fetch_add(1, Relaxed) >= sh.total {
            break;
        }
        let w = match current.take() {
            Some(w) => w,
            None => match login(&sh).await {
                Ok(w) => w,
                Err(e) => {
                    sh.unexpected("login", e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        current = step(rng.below(1000), w, id, &sh).await;
        sh.done.fetch_add(1, Relaxed);
    }
    if let Some(w) = current {
        w.conn.close().await;
    }
}

/// Counts one success.
fn count(counter: &AtomicU64) -> Result<(), String> {
    counter.fetch_add(1, Relaxed);
    Ok(())
}

/// One transaction of the kind `r` (per mille) picks; the connection back
/// if it is still usable.
async fn step(r: u64, mut w: Worker, id: i32, sh: &Shared) -> Option<Worker> {
    let s = &sh.stats;
    let update = format!("UPDATE soak_counter SET n = n + 1 WHERE w = {id}");
    let c = &w.conn.client;
    let result: Result<(), String> = match r {
        // Commit in one Query message.
        0..=299 => c
            .batch_execute(&format!("BEGIN; {update}; COMMIT"))
            .await
            .map_or_else(|e| Err(error_text(&e)), |_| count(&s.committed)),
        // Commit in three round trips (the server held in between).
        300..=599 => async {
            c.batch_execute("BEGIN").await?;
            c.batch_execute(&update).await?;
            c.batch_execute("COMMIT").await
        }
        .await
        .map_or_else(|e| Err(error_text(&e)), |_| count(&s.committed)),
        // Commit with the prepared statement (extended protocol).
        600..=799 => async {
            let tx = w.conn.client.transaction().await?;
            tx.execute(&w.update, &[&id]).await?;
            tx.commit().await
        }
        .await
        .map_or_else(|e| Err(error_text(&e)), |_| count(&s.committed)),
        800..=879 => c
            .batch_execute(&format!("BEGIN; {update}; ROLLBACK"))
            .await
            .map_or_else(|e| Err(error_text(&e)), |_| count(&s.rolled_back)),
        880..=929 => match c
            .batch_execute(&format!("BEGIN; {update}; SELECT 1/0"))
            .await
        {
            Err(e) if error_text(&e).starts_with("22012") => c
                .batch_execute("ROLLBACK")
                .await
                .map_or_else(|e| Err(error_text(&e)), |_| count(&s.failed_in_tx)),
            Err(e) => Err(error_text(&e)),
            Ok(()) => Err("1/0 did not fail".to_owned()),
        },
        // Vanish mid-transaction: TCP reset while the server holds an
        // uncommitted update.
        930..=949 => match c.batch_execute(&format!("BEGIN; {update}")).await {
            Ok(()) => {
                s.vanished.fetch_add(1, Relaxed);
                w.conn.reset();
                return None;
            }
            Err(e) => Err(error_text(&e)),
        },
        // Time out mid-query (the client gives up after 20 ms of a 200 ms
        // query) and reset.
        950..=959 => match c.batch_execute(&format!("BEGIN; {update}")).await {
            Ok(()) => {
                let q = c.simple_query("SELECT pg_sleep(0.2)");
                match tokio::time::timeout(Duration::from_millis(20), q).await {
                    Err(_) => {
                        s.timed_out.fetch_add(1, Relaxed);
                        w.conn.reset();
                        return None;
                    }
                    Ok(r) => Err(format!("pg_sleep(0.2) done in 20 ms? {r:?}")),
                }
            }
            Err(e) => Err(error_text(&e)),
        },
        // Commit, then say goodbye; the next transaction logs in again.
        960..=969 => match c.batch_execute(&format!("BEGIN; {update}; COMMIT")).await {
            Ok(()) => {
                s.committed.fetch_add(1, Relaxed);
                s.goodbyes.fetch_add(1, Relaxed);
                w.conn.close().await;
                return None;
            }
            Err(e) => Err(error_text(&e)),
        },
        970..=971 => cancel(&mut w, sh).await,
        // Idle in a transaction past idle_transaction_timeout: Sluice ends
        // the client and rolls the server back.
        972 => match c.batch_execute(&format!("BEGIN; {update}")).await {
            Ok(()) => {
                tokio::time::sleep(Duration::from_millis(IDLE_TRANSACTION_TIMEOUT * 1000 + 500))
                    .await;
                match c.batch_execute("COMMIT").await {
                    Err(_) => {
                        s.idle_killed.fetch_add(1, Relaxed);
                        w.conn.reset();
                        return None;
                    }
                    Ok(()) => {
                        s.committed.fetch_add(1, Relaxed);
                        Err("COMMIT after idle_transaction_timeout succeeded".to_owned())
                    }
                }
            }
            Err(e) => Err(error_text(&e)),
        },
        _ => c
            .simple_query(&format!("SELECT n FROM soak_counter WHERE w = {id}"))
            .await
            .map_or_else(|e| Err(error_text(&e)), |_| count(&s.reads)),
    };
    match result {
        Ok(()) => {
            w.prev_kind = r;
            // After a cancel kind (cancelled or not), the next statement
            // may meet that cancel; the one after that may not.
            w.spill = r == 970 || r == 971;
            Some(w)
        }
        Err(e) if (w.late_cancel || w.spill) && e.starts_with("57014") => {
            s.own_late_cancel.fetch_add(1, Relaxed);
            w.conn.reset();
            None
        }
        Err(e) => {
            sh.unexpected(
                &format!(
                    "worker {id}, kind {r} after kind {} on this connection, late cancel \
                     pending: {}",
                    w.prev_kind, w.late_cancel
                ),
                e,
            );
            w.conn.reset();
            None
        }
    }
}

/// A 1 s query cancelled after 30 ms through a CancelRequest to Sluice.
async fn cancel(w: &mut Worker, sh: &Shared) -> Result<(), String> {
    let token = w.conn.client.cancel_token();
    let port = sh.port;
    let query = w.conn.client.simple_query("SELECT pg_sleep(1)");
    let send_cancel = async {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("cancel connect: {e}"))?;
        token
            .cancel_query_raw(stream, NoTls)
            .await
            .map_err(|e| error_text(&e))
    };
    let (q, sent) = tokio::join!(query, send_cancel);
    sent?;
    match q {
        Err(e) if error_text(&e).starts_with("57014") => {
            sh.stats.cancelled.fetch_add(1, Relaxed);
            Ok(())
        }
        Ok(_) => {
            sh.stats.cancel_missed.fetch_add(1, Relaxed);
            w.late_cancel = true;
            Ok(())
        }
        Err(e) => Err(error_text(&e)),
    }
}

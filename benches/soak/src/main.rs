//! sluice-soak: issue #8's soak. Starts a throwaway PostgreSQL and a Sluice
//! in front of it, then
//!
//! 1. runs 1,000,000 transactions from clients that commit, roll back, fail,
//!    vanish with a TCP reset mid-transaction, time out, get cancelled, trip
//!    idle_transaction_timeout and reconnect; every committed transaction
//!    adds one to its worker's row, so lost or leaked (dirty-server) work
//!    shows in the sum; then checks: SHOW POOLS has no active servers and
//!    no waiting clients, server connections never exceeded the pool size,
//!    no `idle in transaction` backend is left, the counters add up, RSS at
//!    the end is within 10% of RSS after warm-up;
//! 2. floods Sluice with 10,000 logged-in clients on a pool of 20 (all
//!    served), plus a burst beyond `max_client_conn` (refused with
//!    PgBouncer's error while the others go on);
//! 3. times failed logins: a known user with a wrong password against an
//!    unknown user, for md5 and SCRAM (text and timing must not tell them
//!    apart).
//!
//! Not part of CI (it runs for minutes); `scripts/soak` builds and runs it.
//! Exit status 1 if any check fails. Everything listens on 127.0.0.1.

mod admin;
mod churn;
mod flood;
mod report;
mod rig;
mod timing;

use std::process::ExitCode;
use std::time::Duration;

use report::Report;

struct Args {
    transactions: u64,
    workers: u32,
    flood: u32,
    burst: u32,
    timing_rounds: u32,
}

const USAGE: &str = "usage: sluice-soak [--transactions N] [--workers N] [--flood N] [--burst N] [--timing-rounds N]

  --transactions N   transactions in the churn phase (default 1000000)
  --workers N        concurrent clients in the churn phase (default 64)
  --flood N          clients held at once in the flood phase, 0 skips it (default 10000)
  --burst N          extra clients beyond max_client_conn (default 300)
  --timing-rounds N  failed logins of each kind timed per method, 0 skips (default 400)

Needs SLUICE_BIN (scripts/soak sets it) and PostgreSQL's server binaries.";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        transactions: 1_000_000,
        workers: 64,
        flood: 10_000,
        burst: 300,
        timing_rounds: 400,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_owned());
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n\n{USAGE}"))?;
        let n: u64 = value
            .parse()
            .map_err(|_| format!("{flag}: not a number: {value}"))?;
        let small = || u32::try_from(n).map_err(|_| format!("{flag}: too large"));
        match flag.as_str() {
            "--transactions" => a.transactions = n,
            "--workers" => a.workers = small()?.max(1),
            "--flood" => a.flood = small()?,
            "--burst" => a.burst = small()?,
            "--timing-rounds" => a.timing_rounds = small()?,
            _ => return Err(format!("unknown option {flag}\n\n{USAGE}")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let nofile = sluice_testkit::raise_nofile();
    let mut flood = args.flood;
    if u64::from(flood + args.burst) + 500 > nofile {
        let fit = nofile.saturating_sub(500 + u64::from(args.burst)) as u32;
        eprintln!("note: RLIMIT_NOFILE is {nofile}: flood trimmed from {flood} to {fit} clients");
        flood = fit;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut report = Report::default();
    rt.block_on(async {
        let rig = rig::Rig::start(flood, args.workers);
        report.line(format!(
            "PostgreSQL {} on 127.0.0.1:{}, Sluice (pid {}) on 127.0.0.1:{}, pool_size {}, \
             max_client_conn {}",
            rig.pg_version().await,
            rig.cluster.port,
            rig.sluice.pid(),
            rig.sluice.port,
            rig::POOL_SIZE,
            rig.max_client_conn
        ));
        // The churn first: its RSS check must start from a fresh process,
        // not from what the allocator keeps after the flood's 10,000
        // clients (that would hide a leak of up to that much).
        if args.transactions > 0 {
            churn::run(&rig, args.transactions, args.workers, &mut report).await;
        }
        if flood > 0 {
            flood::run(&rig, flood, args.burst, &mut report).await;
        }
        if args.timing_rounds > 0 {
            timing::run(&rig, args.timing_rounds, &mut report).await;
        }
        // Let the runtime's spawned connection tasks wind down before the
        // rig (and its processes) drop.
        tokio::time::sleep(Duration::from_millis(100)).await;
    });
    report.finish()
}

//! The pgbench matrix: rounds × workloads × client counts × targets, the
//! targets interleaved within each cell (direct, pgbouncer, sluice, …), with
//! the pooler's CPU time and peak RSS sampled from /proc around each run.
//! Each pooler is restarted before each of its runs.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::backends::Watcher;
use crate::cli::Config;
use crate::pgbench;
use crate::procstat;
use crate::targets::{Kind, Target};
use crate::workload::Workload;

/// One pgbench run against one target.
#[derive(Clone, Debug)]
pub struct RunRecord {
    pub round: u32,
    pub workload: Workload,
    pub clients: u32,
    pub target: Kind,
    pub tps: f64,
    pub transactions: u64,
    pub failed: u64,
    pub aborted: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Pooler utime+stime during the run (None for direct).
    pub cpu_ms: Option<f64>,
    pub cpu_ms_per_1k_tx: Option<f64>,
    pub peak_rss_kib: Option<u64>,
    /// Most backends of the target's server role seen during the run.
    pub max_server_conns: Option<i64>,
    pub error: Option<String>,
}

/// Why a (workload, clients, target) cell is not run.
pub fn skip_reason(cfg: &Config, kind: Kind, clients: u32, nofile: u64) -> Option<String> {
    // pgbench and the pooler each need a socket per client, plus slack.
    if u64::from(clients) + 100 > nofile {
        return Some(format!(
            "{clients} clients need more file descriptors than RLIMIT_NOFILE ({nofile})"
        ));
    }
    // Both poolers may hold pool_size servers; the sampler and superuser.
    let reserved = 2 * cfg.pool_size + 10;
    if kind == Kind::Direct && clients + reserved > cfg.max_connections {
        return Some(format!(
            "direct skipped at {clients} clients: PostgreSQL max_connections is {} \
             ({reserved} kept for the poolers and superuser)",
            cfg.max_connections
        ));
    }
    None
}

/// Runs the whole matrix; progress goes to stderr.
pub fn run(
    cfg: &Config,
    superuser_url: &str,
    targets: &mut [Target],
    work_dir: &Path,
    nofile: u64,
    skips: &mut Vec<String>,
) -> Result<Vec<RunRecord>, String> {
    let mut records = Vec::new();
    let mut seq = 0u32;
    for round in 1..=cfg.rounds {
        for (workload, counts) in &cfg.plan {
            for &clients in counts {
                for target in targets.iter_mut() {
                    if let Some(reason) = skip_reason(cfg, target.kind, clients, nofile) {
                        if round == 1 {
                            let line = format!("{}: {reason}", workload.name());
                            eprintln!("  skip {line}");
                            skips.push(line);
                        }
                        continue;
                    }
                    seq += 1;
                    // A fresh pooler for every run: otherwise a run would
                    // start on the servers (and the prepared statements on
                    // them) the previous round left behind.
                    target.restart()?;
                    let dir = work_dir.join(format!("run-{seq}"));
                    std::fs::create_dir_all(&dir)
                        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                    let watcher = Watcher::start(
                        superuser_url.to_owned(),
                        target.kind.server_role(workload.user().name).to_owned(),
                    );
                    let mut record = run_one(cfg, target, *workload, clients, round, &dir)?;
                    record.max_server_conns = watcher.finish();
                    let _ = std::fs::remove_dir_all(&dir);
                    eprintln!("  {}", progress_line(&record, cfg.rounds));
                    records.push(record);
                }
            }
        }
    }
    Ok(records)
}

fn progress_line(r: &RunRecord, rounds: u32) -> String {
    let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.2}"));
    let mut line = format!(
        "round {}/{rounds} {} c={} {}: tps={:.0} p50={}ms p99={}ms failed={} aborted={}",
        r.round,
        r.workload.name(),
        r.clients,
        r.target.name(),
        r.tps,
        ms(r.p50_ms),
        ms(r.p99_ms),
        r.failed,
        r.aborted
    );
    if let Some(cpu) = r.cpu_ms_per_1k_tx {
        line.push_str(&format!(" cpu/1k={cpu:.1}ms"));
    }
    if let Some(rss) = r.peak_rss_kib {
        line.push_str(&format!(" rss={:.1}MiB", rss as f64 / 1024.0));
    }
    if let Some(n) = r.max_server_conns {
        line.push_str(&format!(" server_conns={n}"));
    }
    if let Some(e) = &r.error {
        line.push_str(&format!(" error: {e}"));
    }
    line
}

fn run_one(
    cfg: &Config,
    target: &Target,
    workload: Workload,
    clients: u32,
    round: u32,
    dir: &Path,
) -> Result<RunRecord, String> {
    let args = workload
        .pgbench_args(dir, cfg.scale)
        .map_err(|e| format!("cannot write pgbench scripts: {e}"))?;
    let spec = pgbench::Spec {
        port: target.port,
        user: workload.user(),
        clients,
        threads: cfg.threads,
        duration_s: cfg.duration_s,
        workload_args: &args,
        dir,
    };
    let pid = target.pid();
    let cpu_before = pid.and_then(procstat::cpu_ticks);
    let mut peak_rss = pid.and_then(procstat::rss_kib);
    let mut running = pgbench::spawn(&spec).map_err(|e| format!("cannot start pgbench: {e}"))?;
    // Logins of thousands of clients take a while; a hung run still ends.
    let limit = Duration::from_secs(u64::from(cfg.duration_s) + 60 + u64::from(clients) / 20);
    let started = Instant::now();
    let mut timed_out = false;
    while !running.finished() {
        if started.elapsed() > limit {
            running.kill();
            timed_out = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if let Some(rss) = pid.and_then(procstat::rss_kib) {
            peak_rss = Some(peak_rss.map_or(rss, |p| p.max(rss)));
        }
    }
    let cpu_after = pid.and_then(procstat::cpu_ticks);
    let (stdout, stderr) = running.output();
    let summary = pgbench::parse_summary(&stdout, &stderr);
    let mut latencies = pgbench::read_latencies(dir);
    latencies.sort_unstable();
    let ms = |p| pgbench::percentile(&latencies, p).map(|us| us as f64 / 1000.0);
    let cpu_ms = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) => {
            Some(procstat::ticks_to_duration(b.saturating_sub(a)).as_secs_f64() * 1000.0)
        }
        _ => None,
    };
    let per_1k = cpu_ms
        .filter(|_| summary.transactions > 0)
        .map(|cpu| cpu / (summary.transactions as f64 / 1000.0));
    let mut error = summary.error.clone();
    if timed_out {
        error = Some(format!("pgbench killed after {}s", limit.as_secs()));
    }
    if error.is_some() && target.kind.is_pooler() && pid.and_then(procstat::rss_kib).is_none() {
        return Err(format!(
            "{} died during {} at {clients} clients:\n{}",
            target.kind.name(),
            workload.name(),
            target.log_tail()
        ));
    }
    Ok(RunRecord {
        round,
        workload,
        clients,
        target: target.kind,
        tps: summary.tps.unwrap_or(0.0),
        transactions: summary.transactions,
        failed: summary.failed,
        aborted: summary.aborted,
        p50_ms: ms(50.0),
        p99_ms: ms(99.0),
        cpu_ms,
        cpu_ms_per_1k_tx: per_1k,
        peak_rss_kib: peak_rss.filter(|_| pid.is_some()),
        max_server_conns: None,
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{parse, Parsed};

    #[test]
    fn skips_direct_above_max_connections_and_anything_above_nofile() {
        let Ok(Parsed::Run(cfg)) = parse(Vec::<String>::new()) else {
            panic!()
        };
        assert_eq!(skip_reason(&cfg, Kind::Direct, 200, 20_000), None);
        assert!(skip_reason(&cfg, Kind::Direct, 1000, 20_000).is_some());
        assert_eq!(skip_reason(&cfg, Kind::Sluice, 5000, 20_000), None);
        assert!(skip_reason(&cfg, Kind::Sluice, 5000, 1024).is_some());
    }
}

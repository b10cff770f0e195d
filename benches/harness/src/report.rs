//! Medians over rounds, and the results folder's results.md and
//! results.json.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::cli::Config;
use crate::facts::Facts;
use crate::idle::IdleRecord;
use crate::matrix::RunRecord;
use crate::pipeline::PipelineRecord;
use crate::targets::Kind;
use crate::workload::Workload;

/// Everything a run produced.
pub struct Results {
    pub facts: Facts,
    pub runs: Vec<RunRecord>,
    pub idle: Vec<IdleRecord>,
    pub pipeline: Vec<PipelineRecord>,
    /// Cells not run, and why.
    pub skips: Vec<String>,
    /// Anything else worth saying (e.g. PgBouncer missing).
    pub notes: Vec<String>,
}

/// One (workload, clients, target) cell over its rounds.
#[derive(Clone, Debug)]
pub struct Cell {
    pub workload: Workload,
    pub clients: u32,
    pub target: Kind,
    pub tps: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Failed transactions plus aborted clients, summed over rounds.
    pub failed: u64,
    pub cpu_ms_per_1k_tx: Option<f64>,
    /// Highest over rounds.
    pub peak_rss_kib: Option<u64>,
    /// Most backends of the target's server role, over rounds.
    pub max_server_conns: Option<i64>,
    pub error: Option<String>,
}

/// Median of the values (mean of the middle two for an even count).
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

pub fn cells(runs: &[RunRecord]) -> Vec<Cell> {
    let mut groups: BTreeMap<(Workload, u32, Kind), Vec<&RunRecord>> = BTreeMap::new();
    for r in runs {
        groups
            .entry((r.workload, r.clients, r.target))
            .or_default()
            .push(r);
    }
    groups
        .into_iter()
        .map(|((workload, clients, target), rs)| Cell {
            workload,
            clients,
            target,
            tps: median(rs.iter().map(|r| r.tps).collect()).unwrap_or(0.0),
            p50_ms: median(rs.iter().filter_map(|r| r.p50_ms).collect()),
            p99_ms: median(rs.iter().filter_map(|r| r.p99_ms).collect()),
            failed: rs.iter().map(|r| r.failed + r.aborted).sum(),
            cpu_ms_per_1k_tx: median(rs.iter().filter_map(|r| r.cpu_ms_per_1k_tx).collect()),
            peak_rss_kib: rs.iter().filter_map(|r| r.peak_rss_kib).max(),
            max_server_conns: rs.iter().filter_map(|r| r.max_server_conns).max(),
            error: rs.iter().find_map(|r| r.error.clone()),
        })
        .collect()
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or("—".to_owned(), |v| format!("{v:.decimals$}"))
}

fn ratio(value: f64, base: Option<f64>) -> String {
    match base {
        Some(b) if b > 0.0 => format!("{:.2}×", value / b),
        _ => "—".to_owned(),
    }
}

/// Thousands separators for big round numbers: 12345 → "12,345".
pub fn grouped(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 {
        out.insert(0, '-');
    }
    out
}

fn header(out: &mut String, f: &Facts, cfg: &Config) {
    let _ = writeln!(out, "# Sluice benchmark, {}\n", f.started_utc);
    let _ = writeln!(out, "| machine | |\n|---|---|");
    let rows = [
        ("CPU", format!("{} × {}", f.cpu_model, f.cpus)),
        ("memory", format!("{:.1} GiB", f.memory_gib)),
        ("kernel", f.kernel.clone()),
        ("PostgreSQL", f.postgres.clone()),
        ("pgbench", f.pgbench.clone()),
        ("PgBouncer", f.pgbouncer.clone()),
        ("Sluice commit", f.sluice_commit.clone()),
        ("RLIMIT_NOFILE", f.nofile.to_string()),
    ];
    for (k, v) in rows {
        let _ = writeln!(out, "| {k} | {v} |");
    }
    let _ = writeln!(
        out,
        "\n{} round(s), targets interleaved (direct, pgbouncer, sluice) per cell; \
         {} s per pgbench run, pgbench -j {}, scale {}; both poolers: transaction \
         mode, default_pool_size {}, auth_type=hba (md5 for bench_md5, SCRAM for \
         bench_scram, plaintext userlist), each logging in to PostgreSQL as its own \
         role (via_pgbouncer, via_sluice); PostgreSQL max_connections {}. \
         Medians over rounds; \"failed\" is failed transactions plus aborted \
         clients, summed over rounds; peak RSS and server conns (most backends \
         of the target's server role in pg_stat_activity; for direct, the \
         clients themselves) are the highest over rounds.{}\n",
        cfg.rounds,
        cfg.duration_s,
        cfg.threads,
        cfg.scale,
        cfg.pool_size,
        cfg.max_connections,
        if cfg.quick { " Quick mode." } else { "" }
    );
}

fn workload_table(out: &mut String, workload: Workload, cells: &[Cell]) {
    let _ = writeln!(out, "## {}\n\n{}\n", workload.name(), workload.describe());
    let _ = writeln!(
        out,
        "| target | clients | tps | p50 ms | p99 ms | failed | pooler CPU ms / 1k tx | pooler cores busy | peak RSS MiB | server conns | tps vs PgBouncer |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for cell in cells.iter().filter(|c| c.workload == workload) {
        let base = cells
            .iter()
            .find(|c| {
                c.workload == workload && c.clients == cell.clients && c.target == Kind::PgBouncer
            })
            .map(|c| c.tps);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell.target.name(),
            cell.clients,
            grouped(cell.tps),
            opt(cell.p50_ms, 2),
            opt(cell.p99_ms, 2),
            cell.failed,
            opt(cell.cpu_ms_per_1k_tx, 1),
            // CPU-seconds per second: 1.00 is one core kept busy.
            opt(cell.cpu_ms_per_1k_tx.map(|c| c * cell.tps / 1e6), 2),
            opt(cell.peak_rss_kib.map(|k| k as f64 / 1024.0), 1),
            cell.max_server_conns
                .map_or("—".to_owned(), |n| n.to_string()),
            ratio(cell.tps, base),
        );
    }
    let errors: Vec<String> = cells
        .iter()
        .filter(|c| c.workload == workload)
        .filter_map(|c| {
            let e = c.error.as_ref()?;
            Some(format!(
                "- {} at {} clients: {e}",
                c.target.name(),
                c.clients
            ))
        })
        .collect();
    if !errors.is_empty() {
        let _ = writeln!(out, "\nErrors:\n{}", errors.join("\n"));
    }
    out.push('\n');
}

fn idle_table(out: &mut String, idle: &[IdleRecord]) {
    let _ = writeln!(
        out,
        "## idle\n\n{}; RSS sampled before the logins and 1 s after the last one. \
         Direct PostgreSQL is not measured (a process per client).\n",
        Workload::Idle.describe()
    );
    let _ = writeln!(
        out,
        "| target | clients | connected | RSS before MiB | RSS after MiB | bytes per client | vs PgBouncer |\n\
         |---|---:|---:|---:|---:|---:|---:|"
    );
    let per_target = |kind: Kind| -> Option<f64> {
        median(
            idle.iter()
                .filter(|r| r.target == kind)
                .map(|r| r.bytes_per_client)
                .collect(),
        )
    };
    let base = per_target(Kind::PgBouncer);
    for kind in [Kind::PgBouncer, Kind::Sluice] {
        let rs: Vec<&IdleRecord> = idle.iter().filter(|r| r.target == kind).collect();
        let Some(bytes) = per_target(kind) else {
            continue;
        };
        let med = |f: fn(&IdleRecord) -> f64| median(rs.iter().map(|r| f(r)).collect());
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            kind.name(),
            rs[0].requested,
            opt(med(|r| f64::from(r.connected)), 0),
            opt(med(|r| r.rss_before_kib as f64 / 1024.0), 1),
            opt(med(|r| r.rss_after_kib as f64 / 1024.0), 1),
            grouped(bytes),
            ratio(bytes, base),
        );
    }
    for r in idle.iter().filter(|r| r.first_error.is_some()) {
        let _ = writeln!(
            out,
            "\n- {} round {}: {} of {} failed: {}",
            r.target.name(),
            r.round,
            r.failed,
            r.requested,
            r.first_error.as_deref().unwrap_or_default()
        );
    }
    out.push('\n');
}

fn pipeline_table(out: &mut String, pipeline: &[PipelineRecord]) {
    let Some(first) = pipeline.first() else {
        return;
    };
    let _ = writeln!(
        out,
        "## pipeline\n\n{} clients, {} queries in flight each, `SELECT $1::int`; \
         unnamed: `query_typed` (Parse/Bind/Execute/Sync per query); prepared: one \
         `prepare`, then Bind/Execute/Sync of the named statement.\n",
        first.clients, first.depth
    );
    let _ = writeln!(
        out,
        "| target | mode | queries/s | errors | vs PgBouncer |\n|---|---|---:|---:|---:|"
    );
    let mut keys: Vec<(usize, &str, Kind)> = pipeline
        .iter()
        .map(|r| {
            let order = crate::pipeline::MODES.iter().position(|m| *m == r.mode);
            (order.unwrap_or(0), r.mode.name(), r.target)
        })
        .collect();
    keys.sort();
    keys.dedup();
    let qps = |mode: &str, kind: Kind| {
        median(
            pipeline
                .iter()
                .filter(|r| r.mode.name() == mode && r.target == kind)
                .map(|r| r.qps)
                .collect(),
        )
    };
    for (_, mode, kind) in keys {
        let errors: u64 = pipeline
            .iter()
            .filter(|r| r.mode.name() == mode && r.target == kind)
            .map(|r| r.errors)
            .sum();
        let q = qps(mode, kind).unwrap_or(0.0);
        let _ = writeln!(
            out,
            "| {} | {mode} | {} | {errors} | {} |",
            kind.name(),
            grouped(q),
            ratio(q, qps(mode, Kind::PgBouncer)),
        );
    }
    for r in pipeline.iter().filter(|r| r.first_error.is_some()) {
        let _ = writeln!(
            out,
            "\n- {} {} round {}: {}",
            r.target.name(),
            r.mode.name(),
            r.round,
            r.first_error.as_deref().unwrap_or_default()
        );
    }
    out.push('\n');
}

/// The tables only (what is printed to stdout).
pub fn tables(results: &Results, cfg: &Config) -> String {
    let mut out = String::new();
    let cells = cells(&results.runs);
    for (workload, _) in &cfg.plan {
        if cells.iter().any(|c| c.workload == *workload) {
            workload_table(&mut out, *workload, &cells);
        }
    }
    if !results.idle.is_empty() {
        idle_table(&mut out, &results.idle);
    }
    pipeline_table(&mut out, &results.pipeline);
    let mut skips = results.skips.clone();
    skips.dedup();
    if !skips.is_empty() || !results.notes.is_empty() {
        let _ = writeln!(out, "## Not run\n");
        for line in results.notes.iter().chain(&skips) {
            let _ = writeln!(out, "- {line}");
        }
        out.push('\n');
    }
    out
}

/// results.md: header with machine facts, then the tables and the chart.
pub fn markdown(results: &Results, cfg: &Config) -> String {
    let mut out = String::new();
    header(&mut out, &results.facts, cfg);
    out.push_str(&tables(results, cfg));
    out.push_str("![tps and p99 against clients](chart.svg)\n");
    out
}

/// results.json: settings, facts and every round's raw numbers.
pub fn json(results: &Results, cfg: &Config) -> Value {
    let f = &results.facts;
    json!({
        "machine": {
            "cpu_model": f.cpu_model, "cpus": f.cpus, "memory_gib": f.memory_gib,
            "kernel": f.kernel, "postgres": f.postgres, "pgbench": f.pgbench,
            "pgbouncer": f.pgbouncer, "sluice_commit": f.sluice_commit,
            "rlimit_nofile": f.nofile, "started_utc": f.started_utc,
        },
        "settings": {
            "quick": cfg.quick, "rounds": cfg.rounds, "duration_s": cfg.duration_s,
            "pool_size": cfg.pool_size, "scale": cfg.scale, "threads": cfg.threads,
            "max_connections": cfg.max_connections, "idle_clients": cfg.idle_clients,
            "pipeline_clients": cfg.pipeline_clients, "pipeline_depth": cfg.pipeline_depth,
        },
        "runs": results.runs.iter().map(|r| json!({
            "round": r.round, "workload": r.workload.name(), "clients": r.clients,
            "target": r.target.name(), "tps": r.tps, "transactions": r.transactions,
            "failed": r.failed, "aborted_clients": r.aborted, "p50_ms": r.p50_ms,
            "p99_ms": r.p99_ms, "pooler_cpu_ms": r.cpu_ms,
            "pooler_cpu_ms_per_1k_tx": r.cpu_ms_per_1k_tx,
            "pooler_peak_rss_kib": r.peak_rss_kib,
            "max_server_conns": r.max_server_conns, "error": r.error,
        })).collect::<Vec<_>>(),
        "idle": results.idle.iter().map(|r| json!({
            "round": r.round, "target": r.target.name(), "requested": r.requested,
            "connected": r.connected, "failed": r.failed,
            "rss_before_kib": r.rss_before_kib, "rss_after_kib": r.rss_after_kib,
            "bytes_per_client": r.bytes_per_client, "checked_ok": r.checked_ok,
            "error": r.first_error,
        })).collect::<Vec<_>>(),
        "pipeline": results.pipeline.iter().map(|r| json!({
            "round": r.round, "target": r.target.name(), "mode": r.mode.name(),
            "clients": r.clients, "depth": r.depth, "queries": r.queries,
            "errors": r.errors, "seconds": r.seconds, "queries_per_s": r.qps,
            "error": r.first_error,
        })).collect::<Vec<_>>(),
        "skipped": results.skips,
        "notes": results.notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(target: Kind, tps: f64, p99: f64, round: u32) -> RunRecord {
        RunRecord {
            round,
            workload: Workload::SelectSimple,
            clients: 10,
            target,
            tps,
            transactions: 1000,
            failed: 1,
            aborted: 0,
            p50_ms: Some(0.5),
            p99_ms: Some(p99),
            cpu_ms: None,
            cpu_ms_per_1k_tx: None,
            peak_rss_kib: Some(2048 * u64::from(round)),
            max_server_conns: Some(i64::from(round)),
            error: None,
        }
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![f64::NAN, 5.0]), Some(5.0));
    }

    #[test]
    fn cells_take_medians_sums_and_maxima() {
        let runs = vec![
            run(Kind::Sluice, 100.0, 3.0, 1),
            run(Kind::Sluice, 300.0, 1.0, 2),
            run(Kind::Sluice, 200.0, 2.0, 3),
            run(Kind::PgBouncer, 100.0, 2.0, 1),
        ];
        let cells = cells(&runs);
        let s = cells.iter().find(|c| c.target == Kind::Sluice).unwrap();
        assert_eq!((s.tps, s.p99_ms, s.failed), (200.0, Some(2.0), 3));
        assert_eq!(s.peak_rss_kib, Some(6144));
        let mut table = String::new();
        workload_table(&mut table, Workload::SelectSimple, &cells);
        assert!(
            table.contains("| sluice | 10 | 200 | 0.50 | 2.00 | 3 | — | — | 6.0 | 3 | 2.00× |"),
            "{table}"
        );
        assert!(table.contains("| pgbouncer | 10 | 100 |"), "{table}");
    }

    #[test]
    fn grouping_digits() {
        assert_eq!(grouped(12345.4), "12,345");
        assert_eq!(grouped(999.0), "999");
        assert_eq!(grouped(1_000_000.0), "1,000,000");
        assert_eq!(grouped(-1234.0), "-1,234");
    }
}

//! sluice-bench: PostgreSQL direct, PgBouncer and Sluice side by side on
//! one machine (issue #6). See benches/README.md and `sluice-bench --help`.
//!
//! This file wires the pieces: command line (cli), targets (targets), the
//! pgbench matrix (matrix, pgbench, procstat), the idle and pipeline
//! drivers, and the results folder (report, chart, facts).

mod backends;
mod chart;
mod cli;
mod facts;
mod idle;
mod matrix;
mod pgbench;
mod pipeline;
mod procstat;
mod report;
mod targets;
mod workload;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use cli::{Config, Parsed};
use targets::{Kind, PoolerConfig, Target};

fn main() -> ExitCode {
    match cli::parse(std::env::args().skip(1)) {
        Err(e) => {
            eprintln!("sluice-bench: {e}");
            ExitCode::from(2)
        }
        Ok(Parsed::Help) => {
            print!("{}", cli::HELP);
            ExitCode::SUCCESS
        }
        Ok(Parsed::Run(cfg)) => match run(&cfg) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("sluice-bench: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// A private scratch directory (pooler hba file, pgbench logs), removed
/// when dropped. World-traversable so PgBouncer, run as `postgres` when we
/// are root, can read its hba file.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new() -> Result<WorkDir, String> {
        let path = PathBuf::from(format!("/tmp/sluice-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .and_then(|_| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)))
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(WorkDir(path))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(cfg: &Config) -> Result<(), String> {
    let began = Instant::now();
    let nofile = sluice_testkit::raise_nofile();
    let out_dir = cfg.out.clone().unwrap_or_else(|| {
        PathBuf::from("bench-results").join(facts::compact_utc(SystemTime::now()))
    });
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let work = WorkDir::new()?;
    let mut notes = Vec::new();
    let mut skips = Vec::new();

    let sluice_bin = match &cfg.sluice {
        Some(path) => path.clone(),
        None => std::panic::catch_unwind(sluice_testkit::sluice_bin)
            .map_err(|_| "sluice binary not found: run `cargo build --release -p sluice`")?,
    };
    let pgbouncer_bin = if cfg.no_pgbouncer {
        notes.push("PgBouncer not run (--no-pgbouncer).".to_owned());
        None
    } else {
        let found = targets::find_pgbouncer(cfg.pgbouncer.as_deref());
        if found.is_none() {
            notes.push("PgBouncer not found: run without it (scripts/bench installs it).".into());
        }
        found
    };

    let biggest = cfg
        .plan
        .iter()
        .flat_map(|(_, c)| c.iter().copied())
        .max()
        .unwrap_or(0);
    let max_client_conn = biggest.max(cfg.pipeline_clients) + 100;
    eprintln!(
        "==> PostgreSQL (scale {}, max_connections {}); RLIMIT_NOFILE {nofile}",
        cfg.scale, cfg.max_connections
    );
    if cfg.pin {
        // Before PostgreSQL starts: it and every pgbench inherit CPU 0.
        let cpus = cli::cpu_count() as usize;
        if cpus < 2 {
            return Err("--pin needs at least 2 CPUs".into());
        }
        procstat::pin_thread(0, &[0]).map_err(|e| format!("cannot pin to CPU 0: {e}"))?;
        let rest: Vec<usize> = (1..cpus).collect();
        notes.push(format!(
            "--pin: PostgreSQL, pgbench and the pipeline/idle drivers on CPU 0, \
             the poolers on CPU(s) {rest:?}."
        ));
        let _ = targets::POOLER_CPUS.set(rest);
    }
    let cluster = targets::start_postgres(cfg.scale, cfg.max_connections)?;
    targets::write_pooler_hba(&work.0).map_err(|e| format!("cannot write hba file: {e}"))?;
    let pooler_cfg = PoolerConfig {
        pg_port: cluster.port,
        pool_size: cfg.pool_size,
        max_client_conn,
        work_dir: &work.0,
    };
    let mut list = vec![Target::direct(&cluster)];
    if let Some(bin) = &pgbouncer_bin {
        match targets::start_pooler(Kind::PgBouncer, bin, &pooler_cfg) {
            Ok(t) => list.push(t),
            Err(e) => notes.push(format!("PgBouncer did not start, run without it: {e}")),
        }
    }
    list.push(targets::start_pooler(
        Kind::Sluice,
        &sluice_bin,
        &pooler_cfg,
    )?);
    for note in &notes {
        eprintln!("note: {note}");
    }
    let ports: Vec<String> = list
        .iter()
        .map(|t| format!("{} on {}", t.kind.name(), t.port))
        .collect();
    eprintln!("==> targets: {}", ports.join(", "));

    let mut facts = facts::machine();
    facts.postgres = targets::postgres_version(&cluster);
    facts.pgbench = pgbench::version();
    facts.pgbouncer = match (
        &pgbouncer_bin,
        list.iter().any(|t| t.kind == Kind::PgBouncer),
    ) {
        (Some(bin), true) => targets::binary_version(bin),
        _ => "not run".to_owned(),
    };
    facts.sluice_commit = facts::git_commit();
    facts.nofile = nofile;

    eprintln!("==> pgbench matrix");
    let runs = matrix::run(
        cfg,
        &cluster.superuser_url("postgres"),
        &mut list,
        &work.0,
        nofile,
        &mut skips,
    )?;
    let idle = if cfg.idle {
        run_idle(
            cfg,
            &list,
            &pooler_cfg,
            &pgbouncer_bin,
            &sluice_bin,
            nofile,
            &mut notes,
        )
    } else {
        Vec::new()
    };
    let pipeline = if cfg.pipeline {
        run_pipeline(cfg, &list, &mut notes, &mut skips)
    } else {
        Vec::new()
    };
    drop(list);
    drop(cluster);

    let results = report::Results {
        facts,
        runs,
        idle,
        pipeline,
        skips,
        notes,
    };
    write_results(cfg, &results, &out_dir)?;
    println!("{}", report::tables(&results, cfg));
    let took = began.elapsed().as_secs();
    println!(
        "Results in {} (results.md, results.json, chart.svg); took {}m{:02}s.",
        out_dir.display(),
        took / 60,
        took % 60
    );
    Ok(())
}

fn write_results(cfg: &Config, results: &report::Results, dir: &Path) -> Result<(), String> {
    let write = |name: &str, text: String| {
        std::fs::write(dir.join(name), text).map_err(|e| format!("cannot write {name}: {e}"))
    };
    write("results.md", report::markdown(results, cfg))?;
    let json = serde_json::to_string_pretty(&report::json(results, cfg))
        .map_err(|e| format!("results.json: {e}"))?;
    write("results.json", json + "\n")?;
    let cells = report::cells(&results.runs);
    let charted = if cells
        .iter()
        .any(|c| c.workload == workload::Workload::SelectSimple)
    {
        workload::Workload::SelectSimple
    } else {
        cells
            .first()
            .map_or(workload::Workload::SelectSimple, |c| c.workload)
    };
    write("chart.svg", chart::svg(charted, &cells))
}

/// The idle driver against a fresh instance of each pooler per round (so
/// that memory kept from earlier runs does not hide the growth).
fn run_idle(
    cfg: &Config,
    list: &[Target],
    pooler_cfg: &PoolerConfig,
    pgbouncer_bin: &Option<PathBuf>,
    sluice_bin: &Path,
    nofile: u64,
    notes: &mut Vec<String>,
) -> Vec<idle::IdleRecord> {
    let mut records = Vec::new();
    if u64::from(cfg.idle_clients) + 200 > nofile {
        notes.push(format!(
            "idle: {} clients need more file descriptors than RLIMIT_NOFILE ({nofile})",
            cfg.idle_clients
        ));
        return records;
    }
    let fresh_cfg = PoolerConfig {
        max_client_conn: cfg.idle_clients + 100,
        ..*pooler_cfg
    };
    eprintln!("==> idle: {} clients per pooler", cfg.idle_clients);
    for round in 1..=cfg.rounds {
        for kind in [Kind::PgBouncer, Kind::Sluice] {
            if !list.iter().any(|t| t.kind == kind) {
                continue;
            }
            let bin = match kind {
                Kind::PgBouncer => pgbouncer_bin.as_deref().unwrap_or(Path::new("pgbouncer")),
                _ => sluice_bin,
            };
            let result = targets::start_pooler(kind, bin, &fresh_cfg)
                .and_then(|target| idle::run(&target, cfg.idle_clients, round));
            match result {
                Ok(r) => {
                    eprintln!(
                        "  round {round} idle {}: {}/{} connected, RSS {:.1} → {:.1} MiB, {:.0} bytes/client",
                        kind.name(),
                        r.connected,
                        r.requested,
                        r.rss_before_kib as f64 / 1024.0,
                        r.rss_after_kib as f64 / 1024.0,
                        r.bytes_per_client
                    );
                    records.push(r);
                }
                Err(e) => {
                    eprintln!("  round {round} idle {}: {e}", kind.name());
                    notes.push(format!("idle {} round {round}: {e}", kind.name()));
                }
            }
        }
    }
    records
}

fn run_pipeline(
    cfg: &Config,
    list: &[Target],
    notes: &mut Vec<String>,
    skips: &mut Vec<String>,
) -> Vec<pipeline::PipelineRecord> {
    let params = pipeline::Params {
        clients: cfg.pipeline_clients,
        depth: cfg.pipeline_depth,
        duration: Duration::from_secs(u64::from(cfg.pipeline_duration_s)),
    };
    eprintln!(
        "==> pipeline: {} clients × {} in flight, {} s",
        params.clients, params.depth, cfg.pipeline_duration_s
    );
    let mut records = Vec::new();
    for round in 1..=cfg.rounds {
        for mode in pipeline::MODES {
            for target in list {
                if let Some(reason) =
                    matrix::skip_reason(cfg, target.kind, params.clients, u64::MAX)
                {
                    if round == 1 && mode == pipeline::Mode::Unnamed {
                        skips.push(format!("pipeline: {reason}"));
                    }
                    continue;
                }
                match pipeline::run(target, mode, &params, round) {
                    Ok(r) => {
                        eprintln!(
                            "  round {round} pipeline {} {}: {:.0} queries/s, {} errors",
                            mode.name(),
                            target.kind.name(),
                            r.qps,
                            r.errors
                        );
                        records.push(r);
                    }
                    Err(e) => {
                        eprintln!(
                            "  round {round} pipeline {} {}: {e}",
                            mode.name(),
                            target.kind.name()
                        );
                        notes.push(format!(
                            "pipeline {} {} round {round}: {e}",
                            mode.name(),
                            target.kind.name()
                        ));
                    }
                }
            }
        }
    }
    records
}

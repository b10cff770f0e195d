//! Command line: flags, defaults, `--quick`, and the help text.

use std::path::PathBuf;

use crate::workload::{Workload, ALL};

pub const HELP: &str = "\
sluice-bench: PostgreSQL direct, PgBouncer and Sluice side by side

USAGE: sluice-bench [OPTIONS]      (scripts/bench builds and runs it)

Starts a throwaway PostgreSQL (pgbench -i), PgBouncer (if installed) and
Sluice with the same settings (transaction pooling, auth_type=hba, same pool
size) on 127.0.0.1, runs the workload matrix with the targets interleaved
(direct, pgbouncer, sluice, direct, ...) and writes results.md, results.json
and chart.svg to the results folder. Medians over rounds are reported.

OPTIONS:
  --quick               Short run (< 3 min on 2 cores): select-simple and
                        select-prepared at 10 and 50 clients, churn-md5 at 10,
                        idle with 500 clients, a brief pipeline; 1 round, 3 s
                        per run, scale 1. Explicit flags below still win.
  --rounds N            Interleaved rounds per cell (default 3)
  --duration S          Seconds per pgbench run and per pipeline run (default 10)
  --clients LIST        pgbench client counts, comma-separated
                        (default 10,50,200,1000,5000)
  --workloads LIST      Comma-separated, from: select-simple, select-extended,
                        select-prepared, tpcb, churn-scram, churn-md5, long-tx,
                        idle, pipeline (default: all)
  --pool-size N         default_pool_size of both poolers (default 20)
  --scale N             pgbench -i scale factor (default 10)
  --threads N           pgbench -j (default: number of CPUs)
  --max-connections N   PostgreSQL max_connections (default 400); the direct
                        target is skipped at client counts it cannot take
  --idle-clients N      Clients the idle driver opens (default 10000)
  --pipeline-clients K  Clients of the pipeline driver (default 50)
  --pipeline-depth D    Queries in flight per pipeline client (default 16)
  --out DIR             Results folder (default bench-results/<UTC timestamp>)
  --no-pgbouncer        Do not run PgBouncer
  --pgbouncer PATH      PgBouncer binary (default: $SLUICE_PGBOUNCER_BIN,
                        pgbouncer on PATH, /usr/sbin/pgbouncer)
  --sluice PATH         Sluice binary (default: $SLUICE_BIN, else `sluice`
                        next to this binary, i.e. target/release/sluice)
  --pin                 PostgreSQL and the load generators on CPU 0, the
                        poolers on the other CPUs (needs 2 or more)
  -h, --help            This help
";

#[derive(Clone, Debug)]
pub struct Config {
    pub quick: bool,
    pub rounds: u32,
    pub duration_s: u32,
    /// (workload, client counts) for the pgbench workloads, in run order.
    pub plan: Vec<(Workload, Vec<u32>)>,
    pub idle: bool,
    pub pipeline: bool,
    pub pool_size: u32,
    pub scale: u32,
    pub threads: u32,
    pub max_connections: u32,
    pub idle_clients: u32,
    pub pipeline_clients: u32,
    pub pipeline_depth: u32,
    pub pipeline_duration_s: u32,
    pub out: Option<PathBuf>,
    pub no_pgbouncer: bool,
    pub pgbouncer: Option<PathBuf>,
    pub sluice: Option<PathBuf>,
    /// PostgreSQL and load on CPU 0, poolers on the rest.
    pub pin: bool,
}

pub enum Parsed {
    Help,
    Run(Box<Config>),
}

pub const DEFAULT_CLIENTS: [u32; 5] = [10, 50, 200, 1000, 5000];

/// Parses the arguments (without the program name).
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Parsed, String> {
    let mut quick = false;
    let mut rounds = None;
    let mut duration = None;
    let mut clients: Option<Vec<u32>> = None;
    let mut workloads: Option<Vec<Workload>> = None;
    let mut pool_size = 20;
    let mut scale = None;
    let mut threads = None;
    let mut max_connections = 400;
    let mut idle_clients = None;
    let mut pipeline_clients = None;
    let mut pipeline_depth = 16;
    let mut out = None;
    let mut no_pgbouncer = false;
    let mut pgbouncer = None;
    let mut sluice = None;
    let mut pin = false;

    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = || -> Result<String, String> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--quick" => quick = true,
            "--no-pgbouncer" => no_pgbouncer = true,
            "--pin" => pin = true,
            "--rounds" => rounds = Some(number(&flag, &value()?, 1)?),
            "--duration" => duration = Some(number(&flag, &value()?, 1)?),
            "--clients" => clients = Some(number_list(&flag, &value()?)?),
            "--workloads" => workloads = Some(workload_list(&value()?)?),
            "--pool-size" => pool_size = number(&flag, &value()?, 1)?,
            "--scale" => scale = Some(number(&flag, &value()?, 1)?),
            "--threads" => threads = Some(number(&flag, &value()?, 1)?),
            "--max-connections" => max_connections = number(&flag, &value()?, 20)?,
            "--idle-clients" => idle_clients = Some(number(&flag, &value()?, 1)?),
            "--pipeline-clients" => pipeline_clients = Some(number(&flag, &value()?, 1)?),
            "--pipeline-depth" => pipeline_depth = number(&flag, &value()?, 1)?,
            "--out" => out = Some(PathBuf::from(value()?)),
            "--pgbouncer" => pgbouncer = Some(PathBuf::from(value()?)),
            "--sluice" => sluice = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }

    let default_workloads: Vec<Workload> = if quick {
        vec![
            Workload::SelectSimple,
            Workload::SelectPrepared,
            Workload::ChurnMd5,
            Workload::Idle,
            Workload::Pipeline,
        ]
    } else {
        ALL.to_vec()
    };
    let workloads = workloads.unwrap_or(default_workloads);
    let plan = workloads
        .iter()
        .filter(|w| w.is_pgbench())
        .map(|&w| {
            let counts = match (&clients, quick) {
                (Some(list), _) => list.clone(),
                (None, true) if w == Workload::ChurnMd5 || w == Workload::ChurnScram => vec![10],
                (None, true) => vec![10, 50],
                (None, false) => DEFAULT_CLIENTS.to_vec(),
            };
            (w, counts)
        })
        .collect();
    let duration_s = duration.unwrap_or(if quick { 3 } else { 10 });
    Ok(Parsed::Run(Box::new(Config {
        quick,
        rounds: rounds.unwrap_or(if quick { 1 } else { 3 }),
        duration_s,
        plan,
        idle: workloads.contains(&Workload::Idle),
        pipeline: workloads.contains(&Workload::Pipeline),
        pool_size,
        scale: scale.unwrap_or(if quick { 1 } else { 10 }),
        threads: threads.unwrap_or_else(cpu_count),
        max_connections,
        idle_clients: idle_clients.unwrap_or(if quick { 500 } else { 10_000 }),
        pipeline_clients: pipeline_clients.unwrap_or(if quick { 10 } else { 50 }),
        pipeline_depth,
        pipeline_duration_s: if quick { duration_s.min(2) } else { duration_s },
        out,
        no_pgbouncer,
        pgbouncer,
        sluice,
        pin,
    })))
}

fn number(flag: &str, text: &str, min: u32) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(format!(
            "{flag}: expected a whole number ≥ {min}, got {text:?}"
        )),
    }
}

fn number_list(flag: &str, text: &str) -> Result<Vec<u32>, String> {
    let mut list = text
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| number(flag, s, 1))
        .collect::<Result<Vec<_>, _>>()?;
    list.sort_unstable();
    list.dedup();
    if list.is_empty() {
        return Err(format!("{flag}: empty list"));
    }
    Ok(list)
}

fn workload_list(text: &str) -> Result<Vec<Workload>, String> {
    let mut list = Vec::new();
    for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let w = Workload::from_name(name).ok_or_else(|| {
            let known: Vec<&str> = ALL.iter().map(|w| w.name()).collect();
            format!("unknown workload {name:?}; known: {}", known.join(", "))
        })?;
        if !list.contains(&w) {
            list.push(w);
        }
    }
    if list.is_empty() {
        return Err("--workloads: empty list".into());
    }
    Ok(list)
}

/// Online CPUs.
pub fn cpu_count() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Config {
        match parse(args.iter().map(|s| s.to_string())).unwrap() {
            Parsed::Run(cfg) => *cfg,
            Parsed::Help => panic!("help"),
        }
    }

    #[test]
    fn defaults_run_the_full_matrix() {
        let cfg = run(&[]);
        assert_eq!(cfg.rounds, 3);
        assert_eq!(cfg.duration_s, 10);
        assert_eq!(cfg.plan.len(), 7);
        assert!(cfg.plan.iter().all(|(_, c)| c == &DEFAULT_CLIENTS));
        assert!(cfg.idle && cfg.pipeline);
        assert_eq!(cfg.idle_clients, 10_000);
    }

    #[test]
    fn quick_is_small_and_flags_still_win() {
        let cfg = run(&["--quick"]);
        assert_eq!((cfg.rounds, cfg.duration_s, cfg.scale), (1, 3, 1));
        let churn = cfg.plan.iter().find(|(w, _)| *w == Workload::ChurnMd5);
        assert_eq!(churn.unwrap().1, vec![10]);
        assert_eq!(cfg.idle_clients, 500);
        let cfg = run(&["--quick", "--rounds=2", "--clients", "50,10,10"]);
        assert_eq!(cfg.rounds, 2);
        assert!(cfg.plan.iter().all(|(_, c)| c == &vec![10, 50]));
    }

    #[test]
    fn workloads_and_errors() {
        let cfg = run(&["--workloads", "tpcb,idle"]);
        assert_eq!(cfg.plan.len(), 1);
        assert!(cfg.idle && !cfg.pipeline);
        assert!(parse(["--workloads".to_string(), "nope".into()]).is_err());
        assert!(parse(["--rounds".to_string(), "0".into()]).is_err());
        assert!(parse(["--bogus".to_string()]).is_err());
        assert!(parse(["--duration".to_string()]).is_err());
        assert!(matches!(parse(["-h".to_string()]), Ok(Parsed::Help)));
    }
}

//! The workloads: what pgbench is asked to do for each, and the names the
//! command line knows them by.

use std::path::Path;

/// Login role and password (plaintext in both poolers' userlist).
#[derive(Clone, Copy, Debug)]
pub struct User {
    pub name: &'static str,
    pub password: &'static str,
}

/// Clients log in with md5 (pg_hba and the poolers' hba file say `md5`).
pub const MD5_USER: User = User {
    name: "bench_md5",
    password: "bench_md5_pw",
};

/// Clients log in with SCRAM-SHA-256.
pub const SCRAM_USER: User = User {
    name: "bench_scram",
    password: "bench_scram_pw",
};

/// The database pgbench -i fills.
pub const DATABASE: &str = "bench";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Workload {
    SelectSimple,
    SelectExtended,
    SelectPrepared,
    Tpcb,
    ChurnScram,
    ChurnMd5,
    LongTx,
    /// Many idle logged-in clients (tokio-postgres), memory per client.
    Idle,
    /// Pipelined extended-protocol clients (tokio-postgres), queries/s.
    Pipeline,
}

pub const ALL: [Workload; 9] = [
    Workload::SelectSimple,
    Workload::SelectExtended,
    Workload::SelectPrepared,
    Workload::Tpcb,
    Workload::ChurnScram,
    Workload::ChurnMd5,
    Workload::LongTx,
    Workload::Idle,
    Workload::Pipeline,
];

/// Short select-only transaction (what `-S` runs), 9 in 10 in long-tx.
const SHORT_SCRIPT: &str = "\\set aid random(1, 100000 * :scale)\n\
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n";

/// A transaction that holds its server for ~10 ms, 1 in 10 in long-tx.
const LONG_SCRIPT: &str = "\\set aid random(1, 100000 * :scale)\n\
BEGIN;\n\
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n\
\\sleep 10 ms\n\
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n\
END;\n";

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::SelectSimple => "select-simple",
            Workload::SelectExtended => "select-extended",
            Workload::SelectPrepared => "select-prepared",
            Workload::Tpcb => "tpcb",
            Workload::ChurnScram => "churn-scram",
            Workload::ChurnMd5 => "churn-md5",
            Workload::LongTx => "long-tx",
            Workload::Idle => "idle",
            Workload::Pipeline => "pipeline",
        }
    }

    pub fn from_name(name: &str) -> Option<Workload> {
        ALL.into_iter().find(|w| w.name() == name)
    }

    /// What the workload is, for the report.
    pub fn describe(self) -> &'static str {
        match self {
            Workload::SelectSimple => "pgbench -S -M simple (select-only, simple query protocol)",
            Workload::SelectExtended => "pgbench -S -M extended (select-only, unnamed statements)",
            Workload::SelectPrepared => {
                "pgbench -S -M prepared (select-only, named prepared statements)"
            }
            Workload::Tpcb => "pgbench default TPC-B-like script (-M simple)",
            Workload::ChurnScram => {
                "pgbench -S -C: a new connection per transaction, SCRAM-SHA-256 login"
            }
            Workload::ChurnMd5 => "pgbench -S -C: a new connection per transaction, md5 login",
            Workload::LongTx => {
                "custom scripts: 90% select-only, 10% transactions holding the server ~10 ms (\\sleep)"
            }
            Workload::Idle => "N logged-in idle tokio-postgres clients: pooler RSS growth per client",
            Workload::Pipeline => {
                "tokio-postgres clients each keeping a pipeline of extended-protocol queries in flight"
            }
        }
    }

    /// Run by pgbench (the others have their own driver).
    pub fn is_pgbench(self) -> bool {
        !matches!(self, Workload::Idle | Workload::Pipeline)
    }

    /// The role pgbench logs in as: the churn workloads pick the auth they
    /// measure; the steady ones use md5 so that thousands of initial logins
    /// do not dominate a run (their tps excludes connection time anyway).
    pub fn user(self) -> User {
        match self {
            Workload::ChurnScram => SCRAM_USER,
            _ => MD5_USER,
        }
    }

    /// pgbench arguments for this workload (besides host, port, user, -c, -j,
    /// -T and logging). `scripts` is a directory the long-tx scripts may be
    /// written to; `scale` is passed with -s where custom scripts need it.
    pub fn pgbench_args(self, scripts: &Path, scale: u32) -> std::io::Result<Vec<String>> {
        let args: &[&str] = match self {
            Workload::SelectSimple => &["-S", "-M", "simple"],
            Workload::SelectExtended => &["-S", "-M", "extended"],
            Workload::SelectPrepared => &["-S", "-M", "prepared"],
            Workload::Tpcb => &["-M", "simple"],
            Workload::ChurnScram | Workload::ChurnMd5 => &["-S", "-C", "-M", "simple"],
            Workload::LongTx => {
                let short = scripts.join("short.sql");
                let long = scripts.join("long.sql");
                std::fs::write(&short, SHORT_SCRIPT)?;
                std::fs::write(&long, LONG_SCRIPT)?;
                return Ok(vec![
                    "-M".into(),
                    "simple".into(),
                    "-s".into(),
                    scale.to_string(),
                    "-f".into(),
                    format!("{}@9", short.display()),
                    "-f".into(),
                    format!("{}@1", long.display()),
                ]);
            }
            Workload::Idle | Workload::Pipeline => &[],
        };
        Ok(args.iter().map(|s| s.to_string()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for w in ALL {
            assert_eq!(Workload::from_name(w.name()), Some(w));
        }
        assert_eq!(Workload::from_name("nope"), None);
    }

    #[test]
    fn long_tx_writes_weighted_scripts() {
        let dir = std::env::temp_dir().join(format!("sluice-bench-wl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let args = Workload::LongTx.pgbench_args(&dir, 7).unwrap();
        assert!(args.iter().any(|a| a.ends_with("short.sql@9")));
        assert!(args.iter().any(|a| a.ends_with("long.sql@1")));
        assert!(args.windows(2).any(|w| w[0] == "-s" && w[1] == "7"));
        let long = std::fs::read_to_string(dir.join("long.sql")).unwrap();
        assert!(long.contains("\\sleep 10 ms"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}

//! Dev-only helpers for Sluice's end-to-end tests: throwaway PostgreSQL
//! clusters on free ports, a running Sluice binary with a generated config,
//! a throwaway PKI (CA, server and client certificates) for TLS tests, and
//! thin wrappers around psql, pgbench and tokio-postgres.
//!
//! Everything listens on 127.0.0.1 only. When the tests run as root, the
//! PostgreSQL server binaries run as the `postgres` OS user.

mod bins;
pub mod certs;
mod client;
mod cluster;
mod limits;
mod ports;
mod sluice;
mod util;

pub use bins::{pg_bin_dir, pgbench, psql_cmd, psql_with};
pub use certs::TestPki;
pub use client::{connect, try_connect};
pub use cluster::{ClusterOptions, ClusterSsl, HbaAuth, PgCluster};
pub use limits::raise_nofile;
pub use ports::free_port;
pub use sluice::{sluice_bin, SluiceProcess};
pub use util::url_encode;

//! Real drivers from their package registries, through Sluice in
//! transaction mode on a pool smaller than the client count, and directly
//! against PostgreSQL as the control. scripts/test installs them into
//! .local/ and says where (SLUICE_PYTHON, SLUICE_NODE_PATH,
//! SLUICE_PRISMA_DIR); without it the test is skipped locally and fails in
//! CI.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;
use sluice_testkit::PgCluster;

fn python() -> Option<PathBuf> {
    match std::env::var_os("SLUICE_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            assert!(
                std::env::var_os("CI").is_none(),
                "SLUICE_PYTHON is not set: run the suite with scripts/test"
            );
            eprintln!("SLUICE_PYTHON not set (run scripts/test): psycopg test skipped");
            None
        }
    }
}

fn run_psycopg(python: &PathBuf, conninfo: &str) -> std::process::Output {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/drivers/psycopg_matrix.py"
    );
    Command::new(python)
        .arg(script)
        .arg(conninfo)
        .output()
        .expect("run python")
}

#[test]
fn psycopg3_default_always_prepare_and_pipeline_work_through_a_pool_of_two() {
    let Some(python) = python() else { return };
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "psycopg");
    let direct = format!(
        "host=127.0.0.1 port={} user={} password={} dbname={}",
        cluster.port, tenant.user, tenant.password, tenant.db
    );
    let out = run_psycopg(&python, &direct);
    assert!(
        out.status.success(),
        "control run against PostgreSQL failed: {}",
        show(&out)
    );
    let sluice = start_sluice(cluster, &tenant, "transaction", 2, "");
    let through = format!(
        "host=127.0.0.1 port={} user={} password={} dbname={}",
        sluice.port, tenant.user, tenant.password, tenant.db
    );
    let out = run_psycopg(&python, &through);
    assert!(
        out.status.success(),
        "{}\n{}",
        show(&out),
        log_tail(&sluice, 20)
    );
    let admin = tenant_servers(cluster, &tenant);
    assert!(admin <= 2, "{admin} servers for a pool of 2");
}

fn node_path() -> Option<String> {
    match std::env::var("SLUICE_NODE_PATH") {
        Ok(p) => Some(p),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "SLUICE_NODE_PATH is not set: run the suite with scripts/test"
            );
            eprintln!("SLUICE_NODE_PATH not set (run scripts/test): node-postgres test skipped");
            None
        }
    }
}

fn run_node_pg(node_path: &str, url: &str) -> std::process::Output {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/drivers/node_pg_matrix.js"
    );
    Command::new("node")
        .arg(script)
        .arg(url)
        .env("NODE_PATH", node_path)
        .output()
        .expect("run node")
}

#[test]
fn node_postgres_named_plain_and_queued_queries_work_through_a_pool_of_two() {
    let Some(node_path) = node_path() else { return };
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "nodepg");
    let out = run_node_pg(&node_path, &tenant.direct_url(cluster));
    assert!(
        out.status.success(),
        "control run against PostgreSQL failed: {}",
        show(&out)
    );
    let sluice = start_sluice(cluster, &tenant, "transaction", 2, "");
    let out = run_node_pg(&node_path, &tenant.url(&sluice));
    assert!(
        out.status.success(),
        "{}\n{}",
        show(&out),
        log_tail(&sluice, 20)
    );
}

fn prisma_dir() -> Option<PathBuf> {
    match std::env::var_os("SLUICE_PRISMA_DIR") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            assert!(
                std::env::var_os("CI").is_none(),
                "SLUICE_PRISMA_DIR is not set: run the suite with scripts/test"
            );
            eprintln!("SLUICE_PRISMA_DIR not set (run scripts/test): Prisma test skipped");
            None
        }
    }
}

/// Runs the Prisma script with tsx (the generated client is TypeScript),
/// sampling the tenant's server connections meanwhile; returns the output
/// and the largest count seen.
async fn run_prisma(
    dir: &std::path::Path,
    url: &str,
    cluster: &PgCluster,
    tenant: &Tenant,
) -> (std::process::Output, i64) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/drivers/prisma/prisma_matrix.mjs"
    );
    let sampler = Sampler::start(superuser(cluster).await, &tenant.user, Some(&tenant.db));
    let run = tokio::process::Command::new(dir.join("node_modules/.bin/tsx"))
        .arg(script)
        .arg(url)
        .env("SLUICE_PRISMA_DIR", dir)
        .env("CHECKPOINT_DISABLE", "1")
        .env("PRISMA_HIDE_UPDATE_MESSAGE", "1")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(180), run)
        .await
        .expect("the Prisma script did not finish in 180 s")
        .expect("run tsx");
    (out, sampler.finish().await)
}

#[tokio::test(flavor = "multi_thread")]
async fn prisma7_crud_and_transactions_work_through_a_pool_of_two() {
    let Some(dir) = prisma_dir() else { return };
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "prisma");
    let (out, _) = run_prisma(&dir, &tenant.direct_url(cluster), cluster, &tenant).await;
    assert!(
        out.status.success(),
        "control run against PostgreSQL failed: {}",
        show(&out)
    );
    let sluice = start_sluice(cluster, &tenant, "transaction", 2, "");
    let (out, max) = run_prisma(&dir, &tenant.url(&sluice), cluster, &tenant).await;
    assert!(
        out.status.success(),
        "{}\n{}",
        show(&out),
        log_tail(&sluice, 20)
    );
    assert!(max <= 2, "{max} servers for a pool of 2");
    let admin = tenant_servers(cluster, &tenant);
    assert!(admin <= 2, "{admin} servers for a pool of 2");
}

/// Servers of the tenant still open (the pool never grew past its size).
fn tenant_servers(cluster: &PgCluster, tenant: &Tenant) -> i64 {
    cluster
        .psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = '{}'",
                tenant.user
            ),
        )
        .parse()
        .unwrap_or(i64::MAX)
}

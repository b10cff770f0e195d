//! The Prometheus endpoint (`prometheus_listen`): scraped over real HTTP
//! while clients work through Sluice, with the prometheus-community
//! pgbouncer_exporter's metric names and labels and values that follow
//! the traffic.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use sluice_testkit::{free_port, PgCluster, SluiceProcess};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn start_with_metrics(cluster: &PgCluster, tenant: &Tenant) -> (SluiceProcess, u16) {
    let port = free_port();
    let ini = ini(
        cluster,
        "transaction",
        2,
        &format!("prometheus_listen = 127.0.0.1:{port}"),
    );
    (
        SluiceProcess::start(sluice_bin(), &ini, &tenant.userlist()),
        port,
    )
}

/// Sends `request` raw and returns the whole response.
async fn http(port: u16, request: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("the endpoint answers and closes")
        .unwrap();
    String::from_utf8(out).unwrap()
}

async fn scrape(port: u16) -> String {
    let r = http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let (head, body) = r.split_once("\r\n\r\n").expect("headers");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    body.to_string()
}

/// `name{labels}` → value, checking the exposition format on the way:
/// every sample's family has a TYPE line before it.
fn parse(body: &str) -> HashMap<String, f64> {
    let mut typed = std::collections::HashSet::new();
    let mut samples = HashMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let name = it.next().unwrap();
            let kind = it.next().unwrap();
            assert!(matches!(kind, "gauge" | "counter"), "{line}");
            typed.insert(name.to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect(line);
        let family = series.split('{').next().unwrap();
        assert!(typed.contains(family), "no TYPE before {line}");
        let v: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
        samples.insert(series.to_string(), v);
    }
    samples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_use_the_exporters_names_and_follow_the_traffic() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "metrics");
    let (sluice, port) = start_with_metrics(cluster, &tenant);
    let app = connect(&tenant.url(&sluice)).await;
    for i in 0..20 {
        first_value(&app, &format!("SELECT {i}")).await;
    }
    let busy = connect(&tenant.url(&sluice)).await;
    busy.batch_execute("BEGIN").await.unwrap();
    first_value(&busy, "SELECT 1").await;

    let m = parse(&scrape(port).await);
    let pool = format!("{{database=\"{}\",user=\"{}\"}}", tenant.db, tenant.user);
    let db = format!("{{database=\"{}\"}}", tenant.db);
    let get = |k: String| *m.get(&k).unwrap_or_else(|| panic!("missing {k}"));
    assert_eq!(get("pgbouncer_up".into()), 1.0);
    assert_eq!(
        get(format!("pgbouncer_pools_client_active_connections{pool}")),
        2.0
    );
    assert_eq!(
        get(format!("pgbouncer_pools_client_waiting_connections{pool}")),
        0.0
    );
    assert_eq!(
        get(format!("pgbouncer_pools_server_active_connections{pool}")),
        1.0
    );
    // One server did everything: the transaction holds it now.
    assert_eq!(
        get(format!("pgbouncer_pools_server_idle_connections{pool}")),
        0.0
    );
    for name in [
        "server_used_connections",
        "server_testing_connections",
        "server_login_connections",
        "client_maxwait_seconds",
        "client_active_cancel_connections",
        "client_waiting_cancel_connections",
        "server_active_cancel_connections",
        "server_being_canceled_connections",
    ] {
        get(format!("pgbouncer_pools_{name}{pool}"));
    }
    assert!(
        get(format!(
            "pgbouncer_stats_totals_sql_transactions_pooled_total{db}"
        )) >= 20.0
    );
    assert!(get(format!("pgbouncer_stats_totals_queries_pooled_total{db}")) >= 21.0);
    assert!(get(format!("pgbouncer_stats_totals_received_bytes_total{db}")) > 0.0);
    assert!(get(format!("pgbouncer_stats_totals_sent_bytes_total{db}")) > 0.0);
    let secs = get(format!(
        "pgbouncer_stats_totals_queries_duration_seconds_total{db}"
    ));
    assert!(
        secs > 0.0 && secs < 60.0,
        "seconds, not microseconds: {secs}"
    );
    for name in [
        "client_wait_seconds_total",
        "server_in_transaction_seconds_total",
        "client_parses_total",
        "server_parses_total",
        "binds_total",
    ] {
        get(format!("pgbouncer_stats_totals_{name}{db}"));
    }
    let dbkey = m
        .keys()
        .find(|k| {
            k.starts_with("pgbouncer_databases_pool_size{")
                && k.contains(&format!("name=\"{}\"", tenant.db))
        })
        .expect("pgbouncer_databases_pool_size for the tenant's database")
        .clone();
    assert_eq!(m[&dbkey], 2.0);
    for name in [
        "pgbouncer_databases_current_connections",
        "pgbouncer_databases_paused",
        "pgbouncer_databases_disabled",
        "pgbouncer_databases_max_connections",
    ] {
        assert!(m.keys().any(|k| k.starts_with(name)), "missing {name}");
    }
    assert_eq!(get("pgbouncer_config_max_client_connections".into()), 500.0);
    assert_eq!(get("pgbouncer_used_servers".into()), 1.0);
    assert!(m
        .keys()
        .any(|k| k.starts_with("pgbouncer_version_info{version=\"PgBouncer ")));
    assert!(get("process_resident_memory_bytes".into()) > 1e6);
    assert!(get("process_open_fds".into()) > 3.0);
    assert!(get("process_cpu_seconds_total".into()) >= 0.0);

    // Scraped again after the transaction ends: the gauges follow.
    busy.batch_execute("COMMIT").await.unwrap();
    let m = parse(&scrape(port).await);
    assert_eq!(
        m[&format!("pgbouncer_pools_server_active_connections{pool}")],
        0.0
    );
    assert_eq!(
        m[&format!("pgbouncer_pools_server_idle_connections{pool}")],
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_paths_methods_and_garbage_get_http_errors_and_sluice_keeps_going() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "metricsbad");
    let (sluice, port) = start_with_metrics(cluster, &tenant);
    let r = http(port, "GET / HTTP/1.1\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    let r = http(port, "POST /metrics HTTP/1.1\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 405"), "{r}");
    let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
    let r = http(port, &huge).await;
    assert!(r.starts_with("HTTP/1.1 431"), "{}", &r[..r.len().min(80)]);
    // A client that connects and says nothing does not block others.
    let _silent = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    assert!(scrape(port).await.contains("pgbouncer_up 1"));
    let app = connect(&tenant.url(&sluice)).await;
    assert_eq!(first_value(&app, "SELECT 1").await, "1");
}

#[test]
fn a_prometheus_listen_address_in_use_stops_the_start_with_a_reason() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "metricsport");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let ini = ini(
        cluster,
        "transaction",
        2,
        &format!("prometheus_listen = 127.0.0.1:{port}"),
    );
    let dir = std::env::temp_dir().join(format!("sluice-metrics-port-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ini = ini
        .replace("{port}", &free_port().to_string())
        .replace("{dir}", dir.to_str().unwrap());
    std::fs::write(dir.join("pgbouncer.ini"), ini).unwrap();
    std::fs::write(dir.join("userlist.txt"), tenant.userlist()).unwrap();
    let out = std::process::Command::new(sluice_bin())
        .arg(dir.join("pgbouncer.ini"))
        .output()
        .unwrap();
    let err =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "started although the port is taken");
    assert!(err.contains("prometheus_listen"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

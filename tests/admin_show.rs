//! The admin console's SHOW commands and who may use them, against a real
//! Sluice in front of real PostgreSQL: column names and order as in
//! PgBouncer 1.25, counters that follow real traffic, and PgBouncer's
//! errors for refused users and bad commands.

mod common;

use std::time::Duration;

use common::*;
use sluice_testkit::{PgCluster, SluiceProcess};
use tokio_postgres::{Client, SimpleQueryMessage};

/// Sluice for `tenant` with the tenant as admin and `watcher` as a
/// stats-only user (both in userlist.txt, md5).
fn start_with_console(cluster: &PgCluster, tenant: &Tenant, extra: &str) -> SluiceProcess {
    let ini = ini(
        cluster,
        "transaction",
        2,
        &format!(
            "admin_users = {}\nstats_users = watcher\nstats_period = 1\n{extra}",
            tenant.user
        ),
    );
    let users = format!(
        "{}\"watcher\" \"wpw\"\n\"stranger\" \"spw\"\n",
        tenant.userlist()
    );
    SluiceProcess::start(sluice_bin(), &ini, &users)
}

async fn console(sluice: &SluiceProcess, user: &str, password: &str) -> Client {
    connect(&sluice.url(user, password, "pgbouncer")).await
}

/// Column names and rows of one SHOW (text values).
async fn show(c: &Client, what: &str) -> (Vec<String>, Vec<Vec<Option<String>>>) {
    let msgs = c
        .simple_query(&format!("SHOW {what}"))
        .await
        .unwrap_or_else(|e| panic!("SHOW {what}: {}", describe(&e)));
    let mut cols = Vec::new();
    for m in &msgs {
        if let SimpleQueryMessage::RowDescription(d) = m {
            cols = d.iter().map(|c| c.name().to_string()).collect();
        }
    }
    (cols, rows(&msgs))
}

/// The value of `column` in the row whose first column is `key`.
async fn cell(c: &Client, what: &str, key: &str, column: &str) -> Option<String> {
    let (cols, rows) = show(c, what).await;
    let i = cols.iter().position(|n| n == column)?;
    rows.into_iter()
        .find(|r| r[0].as_deref() == Some(key))
        .and_then(|r| r[i].clone())
}

const SOCKET_COLUMNS: &[&str] = &[
    "type",
    "user",
    "database",
    "replication",
    "state",
    "addr",
    "port",
    "local_addr",
    "local_port",
    "connect_time",
    "request_time",
    "wait",
    "wait_us",
    "close_needed",
    "ptr",
    "link",
    "remote_pid",
    "tls",
    "application_name",
    "prepared_statements",
    "id",
];

/// PgBouncer 1.25's columns, from its usage.md and admin.c.
fn expected_columns(what: &str) -> Vec<&'static str> {
    let stats12 = |names: [&'static str; 12]| {
        let mut v = vec!["database"];
        v.extend(names);
        v
    };
    match what {
        "POOLS" => vec![
            "database",
            "user",
            "cl_active",
            "cl_waiting",
            "cl_active_cancel_req",
            "cl_waiting_cancel_req",
            "sv_active",
            "sv_active_cancel",
            "sv_being_canceled",
            "sv_idle",
            "sv_used",
            "sv_tested",
            "sv_login",
            "maxwait",
            "maxwait_us",
            "pool_mode",
            "load_balance_hosts",
        ],
        "CLIENTS" | "SERVERS" => SOCKET_COLUMNS.to_vec(),
        "SOCKETS" | "ACTIVE_SOCKETS" => {
            let mut v = SOCKET_COLUMNS.to_vec();
            v.extend([
                "recv_pos",
                "pkt_pos",
                "pkt_remain",
                "send_pos",
                "send_remain",
                "pkt_avail",
                "send_avail",
            ]);
            v
        }
        "DATABASES" => vec![
            "name",
            "host",
            "port",
            "database",
            "force_user",
            "pool_size",
            "min_pool_size",
            "reserve_pool_size",
            "server_lifetime",
            "pool_mode",
            "load_balance_hosts",
            "max_connections",
            "current_connections",
            "max_client_connections",
            "current_client_connections",
            "paused",
            "disabled",
        ],
        "USERS" => vec![
            "name",
            "pool_size",
            "reserve_pool_size",
            "pool_mode",
            "max_user_connections",
            "current_connections",
            "max_user_client_connections",
            "current_client_connections",
        ],
        "STATS" => vec![
            "database",
            "total_server_assignment_count",
            "total_xact_count",
            "total_query_count",
            "total_received",
            "total_sent",
            "total_xact_time",
            "total_query_time",
            "total_wait_time",
            "total_client_parse_count",
            "total_server_parse_count",
            "total_bind_count",
            "total_client_login_count",
            "avg_server_assignment_count",
            "avg_xact_count",
            "avg_query_count",
            "avg_recv",
            "avg_sent",
            "avg_xact_time",
            "avg_query_time",
            "avg_wait_time",
            "avg_client_parse_count",
            "avg_server_parse_count",
            "avg_bind_count",
            "avg_client_login_count",
        ],
        "STATS_TOTALS" => stats12([
            "server_assignment_count",
            "xact_count",
            "query_count",
            "bytes_received",
            "bytes_sent",
            "xact_time",
            "query_time",
            "wait_time",
            "client_parse_count",
            "server_parse_count",
            "bind_count",
            "client_login_count",
        ]),
        "STATS_AVERAGES" => stats12([
            "server_assignment_count",
            "xact_count",
            "query_count",
            "bytes_received",
            "bytes_sent",
            "xact_time",
            "query_time",
            "wait_time",
            "avg_client_parse_count",
            "avg_server_parse_count",
            "avg_bind_count",
            "client_login_count",
        ]),
        "TOTALS" => vec!["name", "value"],
        "CONFIG" => vec!["key", "value", "default", "changeable"],
        "LISTS" => vec!["list", "items"],
        "STATE" => vec!["key", "value"],
        "VERSION" => vec!["version"],
        "MEM" => vec!["name", "size", "used", "free", "memtotal"],
        "FDS" => vec![
            "fd",
            "task",
            "user",
            "database",
            "addr",
            "port",
            "cancel",
            "link",
            "client_encoding",
            "std_strings",
            "datestyle",
            "timezone",
            "password",
            "scram_client_key",
            "scram_server_key",
        ],
        "DNS_HOSTS" => vec!["hostname", "ttl", "addrs"],
        "DNS_ZONES" => vec!["zonename", "serial", "count"],
        "PEERS" => vec!["peer_id", "host", "port", "pool_size"],
        "PEER_POOLS" => vec![
            "peer_id",
            "cl_active_cancel_req",
            "cl_waiting_cancel_req",
            "sv_active_cancel",
            "sv_login",
        ],
        other => panic!("no expectation for {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_show_command_has_pgbouncers_columns_in_order() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "adminshow");
    let sluice = start_with_console(cluster, &tenant, "");
    let app = connect(&tenant.url(&sluice)).await;
    assert_eq!(first_value(&app, "SELECT 1").await, "1");
    let c = console(&sluice, &tenant.user, &tenant.password).await;
    for what in [
        "POOLS",
        "CLIENTS",
        "SERVERS",
        "SOCKETS",
        "ACTIVE_SOCKETS",
        "DATABASES",
        "USERS",
        "STATS",
        "STATS_TOTALS",
        "STATS_AVERAGES",
        "TOTALS",
        "CONFIG",
        "LISTS",
        "STATE",
        "VERSION",
        "MEM",
        "FDS",
        "DNS_HOSTS",
        "DNS_ZONES",
        "PEERS",
        "PEER_POOLS",
    ] {
        let (cols, _) = show(&c, what).await;
        assert_eq!(cols, expected_columns(what), "SHOW {what}");
    }
    // Lower case works too, and the version names PgBouncer for exporters.
    let (_, v) = show(&c, "version").await;
    let v = v[0][0].clone().unwrap();
    assert!(
        v.starts_with("PgBouncer 1.25.0") && v.contains("Sluice"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_help_is_a_notice_and_psql_prints_it() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "adminhelp");
    let sluice = start_with_console(cluster, &tenant, "");
    let out = std::process::Command::new(sluice_testkit::psql_cmd())
        .args(["-X", "-h", "127.0.0.1", "-p", &sluice.port.to_string()])
        .args(["-U", &tenant.user, "-d", "pgbouncer", "-c", "SHOW HELP"])
        .env("PGPASSWORD", &tenant.password)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}", show_output(&out));
    assert!(err.contains("NOTICE:  Console usage"), "{err}");
    assert!(err.contains("SHOW HELP|CONFIG|DATABASES"), "{err}");
    assert!(err.contains("KILL_CLIENT <client_id>"), "{err}");
}

fn show_output(out: &std::process::Output) -> String {
    common::show(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_clients_and_servers_show_a_transaction_in_progress() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "adminlive");
    let sluice = start_with_console(cluster, &tenant, "");
    let app = connect(&tenant.url_with(&sluice, "application_name=busy_app")).await;
    app.batch_execute("BEGIN").await.unwrap();
    let pid = first_value(&app, "SELECT pg_backend_pid()").await;
    let idle = connect(&tenant.url(&sluice)).await;
    assert_eq!(first_value(&idle, "SELECT 1").await, "1");

    let c = console(&sluice, &tenant.user, &tenant.password).await;
    let (cols, pools) = show(&c, "POOLS").await;
    let col = |n: &str| cols.iter().position(|c| c == n).unwrap();
    let row = pools
        .iter()
        .find(|r| r[0].as_deref() == Some(tenant.db.as_str()))
        .expect("a row for the tenant's pool");
    assert_eq!(row[col("user")].as_deref(), Some(tenant.user.as_str()));
    assert_eq!(row[col("cl_active")].as_deref(), Some("2"));
    assert_eq!(row[col("cl_waiting")].as_deref(), Some("0"));
    assert_eq!(row[col("sv_active")].as_deref(), Some("1"));
    assert_eq!(row[col("sv_idle")].as_deref(), Some("1"));
    assert_eq!(row[col("pool_mode")].as_deref(), Some("transaction"));
    assert!(
        pools.iter().any(|r| r[0].as_deref() == Some("pgbouncer")),
        "the console's own pool is listed, as in PgBouncer"
    );

    let (cols, servers) = show(&c, "SERVERS").await;
    let col = |n: &str| cols.iter().position(|c| c == n).unwrap();
    let busy = servers
        .iter()
        .find(|r| r[col("state")].as_deref() == Some("active"))
        .expect("an active server");
    assert_eq!(busy[col("remote_pid")].as_deref(), Some(pid.as_str()));
    assert_eq!(busy[col("type")].as_deref(), Some("S"));
    let server_ptr = busy[col("ptr")].clone().unwrap();
    let server_link = busy[col("link")].clone().unwrap();

    let (cols, clients) = show(&c, "CLIENTS").await;
    let col = |n: &str| cols.iter().position(|c| c == n).unwrap();
    let active = clients
        .iter()
        .find(|r| r[col("state")].as_deref() == Some("active"))
        .expect("an active client");
    assert_eq!(active[col("link")].as_deref(), Some(server_ptr.as_str()));
    assert_eq!(active[col("ptr")].as_deref(), Some(server_link.as_str()));
    assert_eq!(active[col("application_name")].as_deref(), Some("busy_app"));
    assert_eq!(active[col("addr")].as_deref(), Some("127.0.0.1"));
    assert!(active[col("connect_time")]
        .as_deref()
        .unwrap()
        .ends_with("UTC"));
    let states: Vec<_> = clients.iter().map(|r| r[col("state")].clone()).collect();
    assert!(states.contains(&Some("idle".into())), "{states:?}");

    app.batch_execute("COMMIT").await.unwrap();
    let (_, servers) = show(&c, "SERVERS").await;
    assert!(servers.iter().all(|r| r[4].as_deref() == Some("idle")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_transactions_queries_bytes_and_prepared_statements() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "adminstats");
    let sluice = start_with_console(cluster, &tenant, "");
    let app = connect(&tenant.url(&sluice)).await;
    for i in 0..10 {
        assert_eq!(
            first_value(&app, &format!("SELECT {i}")).await,
            i.to_string()
        );
    }
    // Prepared statements through tokio-postgres: one Parse, many Binds.
    let stmt = app.prepare("SELECT $1::int + 1").await.unwrap();
    for i in 0..5 {
        let r = app.query_one(&stmt, &[&i]).await.unwrap();
        assert_eq!(r.get::<_, i32>(0), i + 1);
    }
    let c = console(&sluice, &tenant.user, &tenant.password).await;
    let get = |col: &'static str| {
        let c = &c;
        let db = tenant.db.clone();
        async move {
            cell(c, "STATS", &db, col)
                .await
                .unwrap_or_else(|| panic!("{col}"))
                .parse::<u64>()
                .unwrap()
        }
    };
    assert!(get("total_xact_count").await >= 15);
    assert!(get("total_query_count").await >= 15);
    assert!(get("total_server_assignment_count").await >= 15);
    assert!(get("total_received").await > 100);
    assert!(get("total_sent").await > 100);
    assert!(get("total_query_time").await > 0);
    assert_eq!(get("total_client_login_count").await, 1);
    assert_eq!(get("total_client_parse_count").await, 1);
    assert!(get("total_server_parse_count").await >= 1);
    assert_eq!(get("total_bind_count").await, 5);

    // The averages fill in at the end of a stats_period (1 s here): keep
    // traffic flowing until they show it.
    let url = tenant.url(&sluice);
    let busy = tokio::spawn(async move {
        let app = connect(&url).await;
        loop {
            app.simple_query("SELECT 1").await.unwrap();
        }
    });
    let filled = wait_for(Duration::from_secs(6), || async {
        cell(&c, "STATS_AVERAGES", &tenant.db, "xact_count")
            .await
            .is_some_and(|v| v != "0")
    })
    .await;
    busy.abort();
    assert!(filled, "avg xacts/s still 0 after traffic");
    let total: u64 = cell(&c, "TOTALS", "total_xact_count", "value")
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert!(total >= 15);
    assert!(
        sluice.log().contains("stats: "),
        "log_stats line every stats_period:\n{}",
        log_tail(&sluice, 10)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databases_users_config_lists_and_state_describe_the_setup() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "adminconf");
    let sluice = start_with_console(cluster, &tenant, "max_db_connections = 7");
    let app = connect(&tenant.url(&sluice)).await;
    assert_eq!(first_value(&app, "SELECT 1").await, "1");
    let c = console(&sluice, &tenant.user, &tenant.password).await;
    assert_eq!(
        cell(&c, "DATABASES", &tenant.db, "pool_size")
            .await
            .as_deref(),
        Some("2")
    );
    assert_eq!(
        cell(&c, "DATABASES", &tenant.db, "max_connections")
            .await
            .as_deref(),
        Some("7")
    );
    assert_eq!(
        cell(&c, "DATABASES", &tenant.db, "current_connections")
            .await
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        cell(&c, "USERS", &tenant.user, "current_connections")
            .await
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        cell(&c, "CONFIG", "default_pool_size", "value")
            .await
            .as_deref(),
        Some("2")
    );
    assert_eq!(
        cell(&c, "CONFIG", "default_pool_size", "default")
            .await
            .as_deref(),
        Some("20")
    );
    assert_eq!(
        cell(&c, "CONFIG", "listen_port", "changeable")
            .await
            .as_deref(),
        Some("no")
    );
    assert_eq!(
        cell(&c, "CONFIG", "log_connections", "value")
            .await
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        cell(&c, "LISTS", "used_servers", "items").await.as_deref(),
        Some("1")
    );
    assert_eq!(
        cell(&c, "STATE", "active", "value").await.as_deref(),
        Some("yes")
    );
    // Fake parameters drivers ask for.
    let (cols, rows) = show(&c, "TIMEZONE").await;
    assert_eq!(
        (cols, rows[0][0].clone()),
        (vec!["timezone".to_string()], Some("GMT".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_users_may_show_but_not_act_and_others_are_refused() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "adminacl");
    let sluice = start_with_console(cluster, &tenant, "");
    let watcher = console(&sluice, "watcher", "wpw").await;
    let (cols, _) = show(&watcher, "POOLS").await;
    assert_eq!(cols[0], "database");
    for cmd in ["PAUSE", "RELOAD", "SHOW FDS", "SET default_pool_size = 3"] {
        let e = watcher.simple_query(cmd).await.expect_err(cmd);
        assert_eq!(describe(&e), "ERROR 08P01: admin access needed", "{cmd}");
    }
    // Fake SETs are allowed for anyone (drivers send them).
    watcher
        .simple_query("SET client_encoding = 'UTF8'")
        .await
        .unwrap();

    let e = try_connect_console(&sluice, "stranger", "spw").await;
    assert_eq!(e, "FATAL 08P01: not allowed");
    let e = try_connect_console(&sluice, &tenant.user, "wrong").await;
    assert!(e.contains("28P01"), "{e}");
}

async fn try_connect_console(sluice: &SluiceProcess, user: &str, pw: &str) -> String {
    match sluice_testkit::try_connect(&sluice.url(user, pw, "pgbouncer")).await {
        Ok(_) => panic!("{user} logged in to the console"),
        Err(e) => describe(&e),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_commands_and_the_extended_protocol_get_pgbouncers_errors() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "adminbad");
    let sluice = start_with_console(cluster, &tenant, "");
    let c = console(&sluice, &tenant.user, &tenant.password).await;
    let e = c.simple_query("SHOW NOTHING").await.unwrap_err();
    assert_eq!(
        describe(&e),
        "ERROR 08P01: invalid command 'SHOW NOTHING', use SHOW HELP;"
    );
    let e = c.simple_query("SELECT 1").await.unwrap_err();
    assert!(describe(&e).contains("invalid command 'SELECT 1'"));
    let e = c.simple_query("KILL_CLIENT 123456").await.unwrap_err();
    assert_eq!(describe(&e), "ERROR 08P01: client not found");
    let e = c.simple_query("PAUSE pgbouncer").await.unwrap_err();
    assert_eq!(
        describe(&e),
        "ERROR 08P01: cannot pause admin db: pgbouncer"
    );
    // The session survives errors.
    let (cols, _) = show(&c, "STATE").await;
    assert_eq!(cols, ["key", "value"]);
    // tokio-postgres' query() uses Parse/Bind: refused, connection closed.
    let e = c.query("SHOW POOLS", &[]).await.unwrap_err();
    assert!(
        describe(&e).contains("extended query protocol not supported by admin console"),
        "{}",
        describe(&e)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_of_a_session_mode_client_show_while_it_is_still_connected() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "adminsess");
    let ini = ini(
        cluster,
        "session",
        2,
        &format!("admin_users = {}", tenant.user),
    );
    let sluice = SluiceProcess::start(sluice_bin(), &ini, &tenant.userlist());
    let app = connect(&tenant.url(&sluice)).await;
    for i in 0..7 {
        first_value(&app, &format!("SELECT {i}")).await;
    }
    let c = console(&sluice, &tenant.user, &tenant.password).await;
    let xacts: u64 = cell(&c, "STATS", &tenant.db, "total_xact_count")
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        xacts, 7,
        "a session-mode client's transactions count at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_type_any_anyone_may_show_but_only_admin_users_may_act() {
    let cluster = PgCluster::shared();
    let ini = ini(
        cluster,
        "transaction",
        2,
        "auth_type = any\nadmin_users = boss\nunix_socket_dir = {dir}",
    );
    let sluice = SluiceProcess::start(sluice_bin(), &ini, "");
    let anyone = console(&sluice, "whoever", "").await;
    let (cols, _) = show(&anyone, "STATE").await;
    assert_eq!(cols, ["key", "value"]);
    let e = anyone.simple_query("PAUSE").await.unwrap_err();
    assert_eq!(describe(&e), "ERROR 08P01: admin access needed");
    let boss = console(&sluice, "boss", "").await;
    boss.simple_query("PAUSE").await.unwrap();
    boss.simple_query("RESUME").await.unwrap();

    // The pooler's own OS user, over the unix socket, as `pgbouncer`.
    let url = format!(
        "host={} port={} user=pgbouncer dbname=pgbouncer",
        sluice.dir.display(),
        sluice.port
    );
    let own = connect(&url).await;
    own.simple_query("PAUSE").await.unwrap();
    own.simple_query("RESUME").await.unwrap();
}

//! End-to-end faults of issue #8 not covered by resilience.rs and
//! timeouts_and_bad_input.rs: PostgreSQL shut down (`pg_ctl stop -m fast`
//! and `-m immediate`) under pgbench through Sluice and started again; a
//! postmaster that stops answering (SIGSTOP) while another database's pool
//! goes on; clients that die mid-pipeline, mid-login (after the
//! StartupMessage or the SSLRequest) and in the wait queue. Each time, the
//! same Sluice process must go on serving with a clean pool.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use sluice_testkit::{pg_bin_dir, try_connect, PgCluster, SluiceProcess};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_postgres::Client;

/// A tenant on the shared cluster with an empty table `t (x int)`.
fn tenant_with_table(tag: &str) -> Tenant {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, tag);
    let sql = format!(
        "CREATE TABLE t (x int); ALTER TABLE t OWNER TO {};",
        tenant.user
    );
    tenant.psql(cluster, &sql);
    tenant
}

/// The admin console, as `tenant` (who must be in admin_users).
async fn console(sluice: &SluiceProcess, tenant: &Tenant) -> Client {
    connect(&sluice.url(&tenant.user, &tenant.password, "pgbouncer")).await
}

/// The rows of an admin `SHOW what`, each as column → value.
async fn show_rows(console: &Client, what: &str) -> Vec<HashMap<String, String>> {
    let msgs = console
        .simple_query(&format!("SHOW {what}"))
        .await
        .unwrap_or_else(|e| panic!("SHOW {what}: {}", describe(&e)));
    msgs.iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                r.columns()
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.name().to_owned(), r.get(i).unwrap_or("").to_owned()))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// A number in `SHOW what`: `column` of the row whose first column
/// (`database` of POOLS, `list` of LISTS) is `key`.
async fn stat(console: &Client, what: &str, key: &str, column: &str) -> i64 {
    let rows = show_rows(console, what).await;
    let first = if what == "POOLS" { "database" } else { "list" };
    let row = rows.iter().find(|r| r[first] == key);
    let row = row.unwrap_or_else(|| panic!("no {key} in SHOW {what}: {rows:?}"));
    row[column].parse().expect("a number")
}

/// Open file descriptors of a process.
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

// ---------------------------------------------------------------- pgbench

/// pgbench through Sluice for `tenant`, running `script` for `secs`
/// (`-n -c 8 -j 2`), its output captured.
fn spawn_pgbench(sluice: &SluiceProcess, tenant: &Tenant, script: &Path, secs: u32) -> Child {
    let bin = pg_bin_dir().join("pgbench");
    Command::new(if bin.is_file() { bin } else { "pgbench".into() })
        .args(["-n", "-c", "8", "-j", "2", "-T", &secs.to_string(), "-f"])
        .arg(script)
        .args(["-h", "127.0.0.1", "-p", &sluice.port.to_string()])
        .args(["-U", &tenant.user, &tenant.db])
        .env("PGPASSWORD", &tenant.password)
        .env("PGSSLMODE", "disable")
        .env_remove("PGOPTIONS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pgbench")
}

/// Waits up to `limit` for `child` to exit; kills it and panics if it hangs.
async fn finish(mut child: Child, limit: Duration, what: &str) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("pgbench output");
            panic!("{what} still running after {limit:?}:\n{}", show(&out));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.wait_with_output().expect("pgbench output")
}

/// pgbench's "number of transactions actually processed: N".
fn processed(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix("number of transactions actually processed: "))
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// PostgreSQL stopped with `mode` under pgbench (8 clients, pool of 4):
/// every pgbench client gets an error and pgbench ends by itself; once
/// PostgreSQL is back, the same Sluice serves a clean pgbench run and its
/// pool is within bounds.
async fn shutdown_under_pgbench(mode: &str) {
    const POOL: i64 = 4;
    let (cluster, tenant) = private_cluster(&format!("bench_{mode}"));
    let extra = format!("admin_users = {}\nquery_wait_timeout = 10", tenant.user);
    let sluice = start_sluice(&cluster, &tenant, "transaction", POOL as usize, &extra);
    let script = sluice.dir.join("bench.sql");
    std::fs::write(&script, "SELECT pg_sleep(0.005);\n").unwrap();

    let mut bench = spawn_pgbench(&sluice, &tenant, &script, 60);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        bench.try_wait().unwrap().is_none(),
        "pgbench ended before the shutdown:\n{}",
        show(&bench.wait_with_output().unwrap())
    );
    tokio::task::block_in_place(|| cluster.stop_with_mode(mode));
    let stopped = Instant::now();
    let out = finish(bench, Duration::from_secs(30), "pgbench after the shutdown").await;
    let (took, text) = (stopped.elapsed(), show(&out));
    assert!(!out.status.success(), "pgbench saw no failure:\n{text}");
    // Every client got an error (none hangs or goes on), and soon.
    assert_eq!(text.matches(" aborted in command ").count(), 8, "{text}");
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert!(processed(&text) > 0, "nothing ran:\n{text}");

    tokio::task::block_in_place(|| cluster.start_again());
    let url = tenant.url(&sluice);
    let back = retry(Duration::from_secs(15), || async {
        let c = try_connect(&url).await?;
        try_value(&c, "SELECT 'back'").await
    })
    .await
    .unwrap_or_else(|e| panic!("{}\n{}", describe(&e), log_tail(&sluice, 30)));
    assert_eq!(back, "back");
    let bench = spawn_pgbench(&sluice, &tenant, &script, 3);
    let out = finish(bench, Duration::from_secs(30), "pgbench after the restart").await;
    let text = format!("{}\n{}", show(&out), log_tail(&sluice, 30));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("number of failed transactions: 0"), "{text}");
    assert!(processed(&text) > 0, "{text}");

    let admin = superuser(&cluster).await;
    let servers = server_count(&admin, &tenant.user, &tenant.db).await;
    assert!(servers <= POOL, "{servers} servers, pool size is {POOL}");
    let c = console(&sluice, &tenant).await;
    let settled = wait_for(Duration::from_secs(5), || async {
        stat(&c, "POOLS", &tenant.db, "cl_active").await == 0
            && stat(&c, "POOLS", &tenant.db, "cl_waiting").await == 0
            && stat(&c, "POOLS", &tenant.db, "sv_active").await == 0
    })
    .await;
    assert!(settled, "still busy: {:?}", show_rows(&c, "POOLS").await);
    let idle = stat(&c, "POOLS", &tenant.db, "sv_idle").await
        + stat(&c, "POOLS", &tenant.db, "sv_used").await;
    assert!(
        (1..=POOL).contains(&idle) && idle >= servers,
        "{idle} idle in SHOW POOLS, {servers} in pg_stat_activity, pool size {POOL}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_shutdown_under_pgbench_aborts_its_clients_and_sluice_serves_after_restart() {
    shutdown_under_pgbench("fast").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immediate_shutdown_under_pgbench_aborts_its_clients_and_sluice_serves_after_restart() {
    shutdown_under_pgbench("immediate").await;
}

// ------------------------------------------------------ stopped postmaster

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_postmaster_fails_queries_with_pgbouncers_text_and_other_pools_go_on() {
    let (cluster, stuck) = private_cluster("pm_stopped");
    let shared = PgCluster::shared();
    let other = Tenant::create(shared, "pmstop_other");
    // One Sluice, two databases on two clusters.
    let star = format!("* = host=127.0.0.1 port={}\n", cluster.port);
    let two = format!(
        "{} = host=127.0.0.1 port={}\n{} = host=127.0.0.1 port={}\n",
        stuck.db, cluster.port, other.db, shared.port
    );
    let extra = "server_connect_timeout = 2\nserver_idle_timeout = 1";
    let ini = ini(&cluster, "transaction", 2, extra).replace(&star, &two);
    assert!(ini.contains(&two), "{ini}");
    let users = format!("{}{}", stuck.userlist(), other.userlist());
    let sluice = SluiceProcess::start(sluice_bin(), &ini, &users);
    let c = connect(&stuck.url(&sluice)).await;
    assert_eq!(first_value(&c, "SELECT 1").await, "1");
    let o = connect(&other.url(&sluice)).await;
    assert_eq!(first_value(&o, "SELECT 1").await, "1");
    // No server left in the stuck pool: the next query must connect.
    let admin = superuser(&cluster).await;
    let closed = wait_for(Duration::from_secs(10), || async {
        server_count(&admin, &stuck.user, &stuck.db).await == 0
    })
    .await;
    assert!(closed, "server_idle_timeout did not close the idle server");

    let pid = cluster.postmaster_pid().expect("postmaster running");
    // SAFETY: kill(2) on the postmaster's pid; no memory involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let resume = Resume(pid);
    let started = Instant::now();
    let query = tokio::spawn(async move { try_value(&c, "SELECT 1").await });
    // Meanwhile the other pool serves, old and new clients alike.
    let o2 = connect(&other.url(&sluice)).await;
    for i in 0..10 {
        let t = Instant::now();
        let client = if i % 2 == 0 { &o } else { &o2 };
        let v = first_value(client, &format!("SELECT {i}")).await;
        assert_eq!(v, i.to_string());
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "held up {:?}",
            t.elapsed()
        );
    }
    let result = tokio::time::timeout(Duration::from_secs(15), query)
        .await
        .expect("a query hangs with the postmaster stopped")
        .unwrap();
    let took = started.elapsed();
    let err = result.expect_err("a query succeeded with the postmaster stopped");
    let db_err = err
        .as_db_error()
        .unwrap_or_else(|| panic!("no error from Sluice: {}", describe(&err)));
    assert_eq!(
        (db_err.code().code(), db_err.message()),
        ("08P01", "pgbouncer cannot connect to server"),
        "{}",
        log_tail(&sluice, 20)
    );
    assert!(took < Duration::from_secs(8), "failed only after {took:?}");
    // The detail stays in Sluice's log.
    let log = sluice.log();
    assert!(
        log.contains("server login failed: server connect timeout"),
        "{log}"
    );

    drop(resume);
    let url = stuck.url(&sluice);
    let back = retry(Duration::from_secs(15), || async {
        let c = try_connect(&url).await?;
        try_value(&c, "SELECT 'back'").await
    })
    .await
    .unwrap_or_else(|e| panic!("no service after SIGCONT: {}", describe(&e)));
    assert_eq!(back, "back");
    assert_eq!(first_value(&o, "SELECT 'still'").await, "still");
}

// ------------------------------------------------------------ raw clients

/// Messages up to and including one tagged `until`.
async fn read_until(s: &mut TcpStream, until: u8) -> Vec<RawMessage> {
    let mut out = Vec::new();
    loop {
        let m = read_raw_message(s).await;
        let done = m.0 == until;
        out.push(m);
        if done {
            return out;
        }
    }
}

fn startup(tenant: &Tenant) -> Vec<u8> {
    sluice_protocol::builders::startup_message(&[
        ("user", tenant.user.as_str()),
        ("database", tenant.db.as_str()),
    ])
    .to_vec()
}

/// A login over a bare socket (Sluice `auth_type = plain`), to ReadyForQuery.
async fn raw_login(port: u16, tenant: &Tenant) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(&startup(tenant)).await.unwrap();
    loop {
        match read_raw_message(&mut s).await {
            (b'R', body) if body[..4] == 3u32.to_be_bytes() => {
                let pw = format!("{}\0", tenant.password);
                s.write_all(&raw_message(b'p', pw.as_bytes()))
                    .await
                    .unwrap();
            }
            (b'Z', _) => return s,
            (b'E', body) => panic!("login failed: {}", error_text(&body)),
            _ => {}
        }
    }
}

fn parse_named(name: &str, sql: &str) -> Vec<u8> {
    raw_message(b'P', format!("{name}\0{sql}\0\0\0").as_bytes())
}

fn bind_execute(portal: &str, stmt: &str) -> Vec<u8> {
    let mut out = raw_message(b'B', format!("{portal}\0{stmt}\0\0\0\0\0\0\0").as_bytes());
    out.extend(raw_message(b'E', format!("{portal}\0\0\0\0\0").as_bytes()));
    out
}

/// How a pipelining client dies.
#[derive(Debug, Clone, Copy)]
enum Death {
    /// BEGIN + INSERT synced, then an unsynced named statement and portal
    /// (flushed and executed), then close.
    AfterFlush { reset: bool },
    /// Nothing synced or flushed: BEGIN, INSERT, named Parse/Bind/Execute,
    /// then a reset.
    Unsynced,
    /// BEGIN + INSERT synced, then half a message, then a reset.
    HalfMessage,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_killed_mid_pipeline_leave_the_next_client_a_clean_server() {
    let cluster = PgCluster::shared();
    let tenant = tenant_with_table("pipekill");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "auth_type = plain");
    let admin = superuser(cluster).await;
    // Servers of the tenant inside a transaction that wrote something.
    let writing = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = '{}' AND backend_xid IS NOT NULL",
        tenant.user
    );
    for death in [
        Death::AfterFlush { reset: false },
        Death::AfterFlush { reset: true },
        Death::Unsynced,
        Death::HalfMessage,
    ] {
        let mut s = raw_login(sluice.port, &tenant).await;
        let mut opening = raw_parse_bind_execute("BEGIN");
        opening.extend(raw_parse_bind_execute("INSERT INTO t VALUES (1)"));
        let mut reset = true;
        match death {
            Death::AfterFlush { reset: r } => {
                reset = r;
                opening.extend(raw_message(b'S', &[]));
                s.write_all(&opening).await.unwrap();
                let got = read_until(&mut s, b'Z').await;
                assert_eq!(got.last().unwrap().1, b"T", "{death:?}: {}", raw_tags(&got));
                let mut more =
                    parse_named("leak_stmt", "INSERT INTO t VALUES (2) RETURNING 'dead'");
                more.extend(bind_execute("leak_portal", "leak_stmt"));
                more.extend(raw_message(b'H', &[]));
                s.write_all(&more).await.unwrap();
                let got = read_until(&mut s, b'C').await;
                assert_eq!(raw_values(&got), ["dead"], "{death:?}: {}", raw_tags(&got));
            }
            Death::Unsynced => {
                opening.extend(parse_named("leak_stmt", "SELECT 'dead'"));
                opening.extend(bind_execute("leak_portal", "leak_stmt"));
                s.write_all(&opening).await.unwrap();
            }
            Death::HalfMessage => {
                opening.extend(raw_message(b'S', &[]));
                s.write_all(&opening).await.unwrap();
                read_until(&mut s, b'Z').await;
                let half = parse_named("leak_stmt", "SELECT 'never complete'");
                s.write_all(&half[..half.len() / 2]).await.unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let inserted = wait_for(Duration::from_secs(5), || async {
            first_value(&admin, &writing).await == "1"
        })
        .await;
        assert!(inserted, "{death:?}: the INSERT never reached the server");
        if reset {
            s.set_zero_linger().unwrap();
        }
        drop(s);

        // The next client: nothing of the dead one's transaction, no open
        // transaction, and its statement and portal names are free.
        let next = connect(&tenant.url(&sluice)).await;
        let sql = "SELECT count(*) || ' ' || (txid_current_if_assigned() IS NULL) FROM t";
        // No row of the dead client, and not inside its transaction.
        assert_eq!(first_value(&next, sql).await, "0 true", "{death:?}");
        let mut raw = raw_login(sluice.port, &tenant).await;
        let mut mine = parse_named("leak_stmt", "SELECT 'mine'::text");
        mine.extend(bind_execute("leak_portal", "leak_stmt"));
        mine.extend(raw_message(b'S', &[]));
        raw.write_all(&mine).await.unwrap();
        let got = read_until(&mut raw, b'Z').await;
        let errors: Vec<_> = got.iter().filter(|m| m.0 == b'E').collect();
        let errors: Vec<_> = errors.iter().map(|m| error_text(&m.1)).collect();
        let seen = (
            raw_tags(&got),
            raw_values(&got),
            got.last().unwrap().1.clone(),
        );
        let want = ("12DCZ".to_owned(), vec!["mine".to_owned()], b"I".to_vec());
        assert_eq!(seen, want, "{death:?}: {errors:?}");
        assert_eq!(first_value(&admin, &writing).await, "0", "{death:?}");
        let servers = server_count(&admin, &tenant.user, &tenant.db).await;
        assert!(servers <= 1, "{death:?}: {servers} servers");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_vanishing_mid_login_leave_no_trace_and_the_pool_serves() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "loginkill");
    let extra = format!("admin_users = {}", tenant.user);
    let sluice = start_sluice(cluster, &tenant, "transaction", 2, &extra);
    let live = connect(&tenant.url(&sluice)).await;
    assert_eq!(first_value(&live, "SELECT 1").await, "1");
    let c = console(&sluice, &tenant).await;
    let fds_before = fd_count(sluice.pid());
    let ssl_request = {
        let mut p = 8u32.to_be_bytes().to_vec();
        p.extend_from_slice(&80877103u32.to_be_bytes());
        p
    };
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (port, startup, ssl_request) = (sluice.port, startup(&tenant), ssl_request.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            match i % 5 {
                // Asked for the md5 password, never answers (FIN, then RST).
                0 | 1 => {
                    s.write_all(&startup).await.unwrap();
                    let (tag, body) = read_raw_message(&mut s).await;
                    assert_eq!((tag, &body[..4]), (b'R', &5u32.to_be_bytes()[..]));
                    if i % 5 == 1 {
                        s.set_zero_linger().unwrap();
                    }
                }
                // Half a password message.
                2 => {
                    s.write_all(&startup).await.unwrap();
                    read_raw_message(&mut s).await;
                    s.write_all(&[b'p', 0, 0, 0, 40, b'm', b'd']).await.unwrap();
                }
                // SSLRequest answered, then gone.
                3 => {
                    s.write_all(&ssl_request).await.unwrap();
                    let mut answer = [0u8; 1];
                    s.read_exact(&mut answer).await.unwrap();
                    assert_eq!(&answer, b"N");
                }
                // SSLRequest, gone before the answer.
                _ => {
                    s.write_all(&ssl_request).await.unwrap();
                    s.set_zero_linger().unwrap();
                }
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .expect("a half-logged-in client hung")
            .unwrap();
    }
    // Only the live client and the console are left, nothing mid-login.
    let clean = wait_for(Duration::from_secs(5), || async {
        stat(&c, "LISTS", "login_clients", "items").await == 0
            && stat(&c, "LISTS", "used_clients", "items").await == 2
            && show_rows(&c, "CLIENTS").await.len() == 2
            && fd_count(sluice.pid()) <= fds_before + 2
    })
    .await;
    let fds = fd_count(sluice.pid());
    let (lists, clients) = (show_rows(&c, "LISTS").await, show_rows(&c, "CLIENTS").await);
    assert!(clean, "fds {fds_before} -> {fds}\n{lists:?}\n{clients:?}");
    assert_eq!(first_value(&live, "SELECT 'live'").await, "live");
    let fresh = connect(&tenant.url(&sluice)).await;
    assert_eq!(first_value(&fresh, "SELECT 'fresh'").await, "fresh");
}

/// As PgBouncer, which reads from a waiting client when a server frees up
/// and drops it at EOF before forwarding anything: clients that died in the
/// queue neither run their queued query nor cost the server, and a live
/// client queued behind them gets the same server at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_dying_in_the_wait_queue_leave_it_and_the_server_goes_to_a_live_one() {
    let cluster = PgCluster::shared();
    let tenant = tenant_with_table("queuedie");
    let extra = format!("admin_users = {}\nquery_wait_timeout = 30", tenant.user);
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, &extra);
    let url = tenant.url(&sluice);
    let c = console(&sluice, &tenant).await;
    let holder = connect(&url).await;
    let opening = holder.batch_execute("BEGIN; INSERT INTO t VALUES (1)");
    opening.await.unwrap();
    let server_pid = first_value(&holder, "SELECT pg_backend_pid()").await;
    let mut dying = Vec::new();
    for _ in 0..50 {
        let AbortableClient { client, connection } = AbortableClient::connect(&url).await;
        let q = tokio::spawn(async move { client.batch_execute("INSERT INTO t VALUES (2)").await });
        dying.push((q, connection));
    }
    let queued = |n: i64| {
        let (c, db) = (&c, tenant.db.clone());
        move || {
            let db = db.clone();
            async move { stat(c, "POOLS", &db, "cl_waiting").await == n }
        }
    };
    let all_queued = wait_for(Duration::from_secs(10), queued(50)).await;
    assert!(all_queued, "50 clients never queued");
    let live = connect(&url).await;
    let live_query = tokio::spawn(async move {
        let sql = "SELECT count(*) || ' rows on ' || pg_backend_pid() FROM t";
        let v = first_value(&live, sql).await;
        (live, v, Instant::now())
    });
    let live_queued = wait_for(Duration::from_secs(5), queued(51)).await;
    assert!(live_queued, "the live client never queued");
    for (q, connection) in dying {
        connection.abort();
        let _ = connection.await;
        let _ = q.await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    holder.batch_execute("COMMIT").await.unwrap();
    let committed = Instant::now();
    let (live, seen, served) = tokio::time::timeout(Duration::from_secs(10), live_query)
        .await
        .expect("the live client never got the server")
        .unwrap();
    let took = served - committed;
    assert_eq!(
        seen,
        format!("1 rows on {server_pid}"),
        "queued queries of dead clients ran, or the server was replaced (the live client \
         was served {took:?} after COMMIT)\n--- sluice log ---\n{}",
        log_tail(&sluice, 6)
    );
    assert!(
        took < Duration::from_secs(1),
        "served {took:?} after COMMIT"
    );
    assert!(wait_for(Duration::from_secs(5), queued(0)).await);
    let clients = show_rows(&c, "CLIENTS").await;
    assert_eq!(clients.len(), 3, "holder, live, console: {clients:?}");
    assert_eq!(first_value(&live, "SELECT 'live'").await, "live");
    let admin = superuser(cluster).await;
    assert_eq!(server_count(&admin, &tenant.user, &tenant.db).await, 1);
}

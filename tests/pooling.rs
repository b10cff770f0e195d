//! End-to-end pooling behaviour: how many servers Sluice opens, when it lends
//! and takes them back, the wait queue and its timeout, the client and server
//! limits, session/statement modes, and pgbench through Sluice.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use sluice_testkit::{pgbench, try_connect, PgCluster, SluiceProcess};

const CLIENTS: usize = 200;
const TXNS_PER_CLIENT: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_mode_never_opens_more_servers_than_pool_size_for_200_clients() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "many");
    tenant.psql(
        cluster,
        &format!(
            "CREATE TABLE hits (client int, n int, at_pid int);\
             ALTER TABLE hits OWNER TO {};",
            tenant.user
        ),
    );
    let sluice = start_sluice(cluster, &tenant, "transaction", 5, "");
    let url = tenant.url(&sluice);

    let sampler = Sampler::start(superuser(cluster).await, &tenant.user, Some(&tenant.db));
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let client = connect(&url).await;
            for n in 0..TXNS_PER_CLIENT {
                client
                    .batch_execute(&format!(
                        "BEGIN; INSERT INTO hits VALUES ({c}, {n}, pg_backend_pid()); \
                         SELECT pg_sleep(0.001); COMMIT"
                    ))
                    .await
                    .unwrap_or_else(|e| panic!("client {c} txn {n}: {}", describe(&e)));
            }
        }));
    }
    for task in tasks {
        task.await.expect("client task");
    }
    let max = sampler.finish().await;

    let admin = superuser(cluster).await;
    let db_admin = connect(&cluster.superuser_url(&tenant.db)).await;
    let rows = first_value(&db_admin, "SELECT count(*) FROM hits").await;
    assert_eq!(rows, (CLIENTS * TXNS_PER_CLIENT).to_string());
    let pids = first_value(&db_admin, "SELECT count(DISTINCT at_pid) FROM hits").await;
    assert!(
        pids.parse::<usize>().unwrap() <= 5,
        "transactions ran on {pids} distinct backends, pool size is 5"
    );
    assert!(max >= 1, "sampler never saw a server");
    assert!(max <= 5, "saw {max} servers at once, pool size is 5");
    let after = server_count(&admin, &tenant.user, &tenant.db).await;
    assert!(after <= 5, "{after} servers left after the run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_do_not_hold_servers_between_transactions() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "idle");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "query_wait_timeout = 5");
    let url = tenant.url(&sluice);
    let mut clients = Vec::new();
    for _ in 0..10 {
        let client = connect(&url).await;
        assert_eq!(first_value(&client, "SELECT 1").await, "1");
        clients.push(client);
    }
    // Every client is connected and idle; the pool of one serves them in
    // turn without waiting for anyone to disconnect.
    let mut pids = Vec::new();
    for round in 0..3 {
        for (i, client) in clients.iter().enumerate() {
            let started = Instant::now();
            let pid = first_value(client, "SELECT pg_backend_pid()").await;
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "round {round} client {i} waited {:?}",
                started.elapsed()
            );
            pids.push(pid);
        }
    }
    pids.dedup();
    assert_eq!(pids.len(), 1, "one server serves all ten clients: {pids:?}");
    let admin = superuser(cluster).await;
    assert_eq!(server_count(&admin, &tenant.user, &tenant.db).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_tpcb_like_through_sluice_has_no_failed_transactions() {
    run_pgbench("tpcb", &["-c", "50", "-j", "2", "-T", "5"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_select_only_with_extended_protocol_through_sluice_has_no_failed_transactions() {
    run_pgbench(
        "bench_ext",
        &["-c", "50", "-j", "2", "-T", "5", "-S", "-M", "extended"],
    )
    .await;
}

/// `pgbench -i` straight on the cluster into a fresh database, then `args`
/// through Sluice (transaction mode, pool of 5) while counting servers.
async fn run_pgbench(tag: &str, args: &[&str]) {
    const POOL: i64 = 5;
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, tag);
    let port = cluster.port.to_string();
    let init = pgbench(
        &[
            "-i",
            "-s",
            "1",
            "-q",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            &tenant.user,
            &tenant.db,
        ],
        &[("PGPASSWORD", &tenant.password), ("PGSSLMODE", "disable")],
    );
    assert!(init.status.success(), "pgbench -i failed: {}", show(&init));

    let sluice = start_sluice(cluster, &tenant, "transaction", POOL as usize, "");
    let sampler = Sampler::start(superuser(cluster).await, &tenant.user, Some(&tenant.db));
    let sluice_port = sluice.port.to_string();
    let mut full: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    full.extend(
        [
            "-h",
            "127.0.0.1",
            "-p",
            &sluice_port,
            "-U",
            &tenant.user,
            &tenant.db,
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let password = tenant.password.clone();
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = full.iter().map(String::as_str).collect();
        pgbench(
            &args,
            &[("PGPASSWORD", &password), ("PGSSLMODE", "disable")],
        )
    })
    .await
    .expect("pgbench task");
    let max = sampler.finish().await;
    let text = show(&out);
    assert!(
        out.status.success(),
        "pgbench failed: {text}\n--- sluice log ---\n{}",
        log_tail(&sluice, 30)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let processed = stdout
        .lines()
        .find_map(|l| l.strip_prefix("number of transactions actually processed: "))
        .unwrap_or_else(|| panic!("no transaction count: {text}"));
    let processed: u64 = processed
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad transaction count: {text}"));
    assert!(processed > 50, "only {processed} transactions: {text}");
    if let Some(failed) = stdout
        .lines()
        .find_map(|l| l.strip_prefix("number of failed transactions: "))
    {
        assert!(
            failed.starts_with("0 "),
            "failed transactions: {failed}\n{text}"
        );
    }
    assert!(max >= 1, "sampler never saw a server");
    assert!(
        max <= POOL,
        "saw {max} servers at once, pool size is {POOL}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_wait_timeout_fails_a_client_that_waits_too_long() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "qwt");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "query_wait_timeout = 1");
    let url = tenant.url(&sluice);
    let holder = connect(&url).await;
    holder.batch_execute("BEGIN; SELECT 1").await.unwrap();

    let waiter = connect(&url).await;
    let started = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(10), waiter.simple_query("SELECT 1"))
        .await
        .expect("the waiting query neither ran nor timed out within 10 s")
        .expect_err("the only server is held by a transaction, yet the query ran");
    let waited = started.elapsed();
    let db = err
        .as_db_error()
        .unwrap_or_else(|| panic!("not a server error: {}", describe(&err)));
    assert!(
        db.message().contains("query_wait_timeout"),
        "got {}",
        describe(&err)
    );
    assert_eq!(db.code().code(), "08P01", "got {}", describe(&err));
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(4),
        "failed after {waited:?}, query_wait_timeout is 1 s"
    );

    // The holder's transaction is unharmed and the pool keeps working.
    holder.batch_execute("COMMIT").await.unwrap();
    let next = connect(&url).await;
    assert_eq!(first_value(&next, "SELECT 42").await, "42");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_clients_get_the_server_in_arrival_order() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "fifo");
    tenant.psql(
        cluster,
        &format!(
            "CREATE TABLE arrivals (seq serial, who int);\
             ALTER TABLE arrivals OWNER TO {};",
            tenant.user
        ),
    );
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    let url = tenant.url(&sluice);
    let holder = connect(&url).await;
    holder.batch_execute("BEGIN; SELECT 1").await.unwrap();

    let mut waiters = Vec::new();
    for who in 0..5 {
        let client = connect(&url).await;
        waiters.push(tokio::spawn(async move {
            client
                .batch_execute(&format!("INSERT INTO arrivals (who) VALUES ({who})"))
                .await
                .unwrap_or_else(|e| panic!("waiter {who}: {}", describe(&e)));
        }));
        // Let this one reach the queue before the next arrives.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    holder.batch_execute("COMMIT").await.unwrap();
    for w in waiters {
        tokio::time::timeout(Duration::from_secs(10), w)
            .await
            .expect("waiter never served")
            .expect("waiter task");
    }
    let admin = connect(&cluster.superuser_url(&tenant.db)).await;
    let order = first_value(
        &admin,
        "SELECT string_agg(who::text, ',' ORDER BY seq) FROM arrivals",
    )
    .await;
    assert_eq!(order, "0,1,2,3,4", "served out of arrival order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_client_conn_refuses_the_client_one_too_many() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "maxcl");
    let sluice = start_sluice(cluster, &tenant, "transaction", 2, "max_client_conn = 3");
    let url = tenant.url(&sluice);
    let mut clients = Vec::new();
    for _ in 0..3 {
        let client = connect(&url).await;
        assert_eq!(first_value(&client, "SELECT 1").await, "1");
        clients.push(client);
    }
    let Err(err) = try_connect(&url).await else {
        panic!("a fourth client got in with max_client_conn = 3");
    };
    let text = describe(&err);
    assert!(
        text.contains("no more connections allowed (max_client_conn)"),
        "got {text}"
    );
    if let Some(db) = err.as_db_error() {
        assert_eq!(db.code().code(), "08P01", "got {text}");
    }
    // The ones inside still work, and a freed slot can be taken again.
    assert_eq!(first_value(&clients[2], "SELECT 2").await, "2");
    drop(clients.pop());
    let again = retry(Duration::from_secs(5), || try_connect(&url))
        .await
        .unwrap_or_else(|e| panic!("slot not freed: {}", describe(&e)));
    assert_eq!(first_value(&again, "SELECT 3").await, "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_mode_resets_the_server_with_discard_all_before_the_next_client() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "sess");
    let sluice = start_sluice(cluster, &tenant, "session", 1, "");
    let url = tenant.url(&sluice);

    let first = connect(&url).await;
    let default_work_mem = first_value(&first, "SHOW work_mem").await;
    first
        .batch_execute(
            "SET work_mem = '7777kB'; \
             PREPARE leftover AS SELECT 1; \
             CREATE TEMP TABLE scratch (x int); \
             LISTEN some_channel",
        )
        .await
        .unwrap();
    let first_pid = first_value(&first, "SELECT pg_backend_pid()").await;
    // Session mode: this client keeps its server and its settings.
    assert_eq!(first_value(&first, "SHOW work_mem").await, "7777kB");
    drop(first);

    let second = connect(&url).await;
    let second_pid = first_value(&second, "SELECT pg_backend_pid()").await;
    assert_eq!(first_pid, second_pid, "pool of one: the server is reused");
    assert_eq!(
        first_value(&second, "SHOW work_mem").await,
        default_work_mem,
        "a SET of the previous client leaked"
    );
    assert_eq!(
        first_value(
            &second,
            "SELECT count(*) FROM pg_prepared_statements WHERE name = 'leftover'"
        )
        .await,
        "0"
    );
    assert_eq!(
        first_value(&second, "SELECT count(*) FROM pg_listening_channels()").await,
        "0"
    );
    assert_eq!(
        first_value(&second, "SELECT to_regclass('pg_temp.scratch') IS NULL").await,
        "t"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_mode_keeps_one_server_per_client_until_it_leaves() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "sess2");
    let sluice = start_sluice(cluster, &tenant, "session", 2, "query_wait_timeout = 2");
    let url = tenant.url(&sluice);
    let a = connect(&url).await;
    let b = connect(&url).await;
    let a_pid = first_value(&a, "SELECT pg_backend_pid()").await;
    let b_pid = first_value(&b, "SELECT pg_backend_pid()").await;
    assert_ne!(a_pid, b_pid);
    for _ in 0..5 {
        assert_eq!(first_value(&a, "SELECT pg_backend_pid()").await, a_pid);
        assert_eq!(first_value(&b, "SELECT pg_backend_pid()").await, b_pid);
    }
    // Both servers are taken: a third client waits and times out.
    let c = connect(&url).await;
    let err = c
        .simple_query("SELECT 1")
        .await
        .expect_err("a third session got a server from a pool of two busy ones");
    assert!(
        describe(&err).contains("query_wait_timeout"),
        "got {}",
        describe(&err)
    );
    drop(a);
    let d = connect(&url).await;
    let d_pid = first_value(&d, "SELECT pg_backend_pid()").await;
    assert_eq!(d_pid, a_pid, "the server of the client that left is reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_mode_refuses_transaction_blocks() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "stmt");
    tenant.psql(
        cluster,
        &format!(
            "CREATE TABLE t (x int); ALTER TABLE t OWNER TO {};",
            tenant.user
        ),
    );
    let sluice = start_sluice(cluster, &tenant, "statement", 1, "");
    let url = tenant.url(&sluice);

    // Single statements run, several clients share one server.
    let a = connect(&url).await;
    let b = connect(&url).await;
    for i in 0..5 {
        a.batch_execute(&format!("INSERT INTO t VALUES ({i})"))
            .await
            .unwrap();
        assert_eq!(first_value(&b, "SELECT 7").await, "7");
    }
    assert_eq!(first_value(&b, "SELECT count(*) FROM t").await, "5");

    let err = a
        .batch_execute("BEGIN")
        .await
        .expect_err("BEGIN accepted in statement mode");
    let text = describe(&err);
    assert!(
        text.contains("transaction blocks not allowed in statement pooling mode"),
        "got {text}"
    );
    // The refused client's server went back clean: another client can use it
    // and is not inside a transaction.
    let c = connect(&url).await;
    assert_eq!(
        first_value(&c, "SELECT txid_current_if_assigned() IS NULL").await,
        "t"
    );
    assert_eq!(first_value(&c, "SELECT count(*) FROM t").await, "5");
    let state = first_value(
        &superuser(cluster).await,
        &format!(
            "SELECT coalesce(string_agg(state, ','), '') FROM pg_stat_activity \
             WHERE usename = '{}' AND state LIKE 'idle in%'",
            tenant.user
        ),
    )
    .await;
    assert_eq!(state, "", "a server was left inside a transaction");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_mode_session_for_one_user_in_users_section_keeps_its_server() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "umode");
    let sluice = SluiceProcess::start(
        sluice_bin(),
        &ini_with_sections(
            cluster,
            "transaction",
            1,
            "query_wait_timeout = 1",
            &format!("[users]\n{} = pool_mode=session\n", tenant.user),
        ),
        &tenant.userlist(),
    );
    let url = tenant.url(&sluice);
    let a = connect(&url).await;
    assert_eq!(first_value(&a, "SELECT 1").await, "1");
    // In session mode the idle client `a` still holds the only server.
    let b = connect(&url).await;
    let err = b
        .simple_query("SELECT 1")
        .await
        .expect_err("user in session mode, yet its idle client's server was lent out");
    assert!(
        describe(&err).contains("query_wait_timeout"),
        "got {}",
        describe(&err)
    );
    drop(a);
    let c = connect(&url).await;
    let got = retry(Duration::from_secs(3), || try_value(&c, "SELECT 2")).await;
    assert_eq!(got.map_err(|e| describe(&e)).unwrap(), "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_pool_size_keeps_servers_open_and_replaces_lost_ones() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "minpool");
    let sluice = start_sluice(cluster, &tenant, "transaction", 5, "min_pool_size = 3");
    let client = connect(&tenant.url(&sluice)).await;
    assert_eq!(first_value(&client, "SELECT 1").await, "1");
    let admin = superuser(cluster).await;
    let warmed = wait_for(Duration::from_secs(5), || async {
        server_count(&admin, &tenant.user, &tenant.db).await == 3
    })
    .await;
    assert!(
        warmed,
        "min_pool_size = 3, yet {} servers",
        server_count(&admin, &tenant.user, &tenant.db).await
    );
    let old = server_pids(&admin, &tenant.user, &tenant.db).await;
    admin
        .batch_execute(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE usename = '{}' AND datname = '{}'",
            tenant.user, tenant.db
        ))
        .await
        .unwrap();
    // Terminated backends linger in pg_stat_activity for a moment, so wait
    // for three servers none of which is one of the terminated ones.
    let refilled = wait_for(Duration::from_secs(6), || async {
        let now = server_pids(&admin, &tenant.user, &tenant.db).await;
        now.len() == 3 && now.iter().all(|pid| !old.contains(pid))
    })
    .await;
    assert!(
        refilled,
        "servers not replaced after {old:?} were terminated: {:?}",
        server_pids(&admin, &tenant.user, &tenant.db).await
    );
    let works = retry(Duration::from_secs(3), || try_value(&client, "SELECT 5")).await;
    assert_eq!(works.map_err(|e| describe(&e)).unwrap(), "5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_idle_timeout_closes_idle_servers_but_not_busy_ones() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "idlet");
    let sluice = start_sluice(
        cluster,
        &tenant,
        "transaction",
        3,
        "server_idle_timeout = 1",
    );
    let url = tenant.url(&sluice);
    let busy = connect(&url).await;
    busy.batch_execute("BEGIN").await.unwrap();
    let busy_pid = first_value(&busy, "SELECT pg_backend_pid()").await;

    // Open two more servers with overlapping transactions.
    let a = connect(&url).await;
    let b = connect(&url).await;
    let (ra, rb) = tokio::join!(
        a.simple_query("SELECT pg_sleep(0.3)"),
        b.simple_query("SELECT pg_sleep(0.3)")
    );
    ra.unwrap();
    rb.unwrap();
    let admin = superuser(cluster).await;
    assert_eq!(server_count(&admin, &tenant.user, &tenant.db).await, 3);

    let closed = wait_for(Duration::from_secs(6), || async {
        server_count(&admin, &tenant.user, &tenant.db).await == 1
    })
    .await;
    assert!(
        closed,
        "idle servers not closed after server_idle_timeout = 1: {}",
        server_count(&admin, &tenant.user, &tenant.db).await
    );
    assert_eq!(
        server_pids(&admin, &tenant.user, &tenant.db).await,
        vec![busy_pid.parse::<i32>().unwrap()],
        "the server inside a transaction must stay"
    );
    assert_eq!(
        first_value(&busy, "SELECT pg_backend_pid()").await,
        busy_pid
    );
    busy.batch_execute("COMMIT").await.unwrap();
    assert_eq!(first_value(&a, "SELECT 1").await, "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_lifetime_retires_a_server_only_after_its_transaction() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "life");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "server_lifetime = 1");
    let url = tenant.url(&sluice);
    let client = connect(&url).await;
    client.batch_execute("BEGIN").await.unwrap();
    let pid = first_value(&client, "SELECT pg_backend_pid()").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        first_value(&client, "SELECT pg_backend_pid()").await,
        pid,
        "server replaced in the middle of a transaction"
    );
    client.batch_execute("COMMIT").await.unwrap();

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = first_value(&client, "SELECT pg_backend_pid()").await;
    assert_ne!(later, pid, "server kept past server_lifetime");
    let admin = superuser(cluster).await;
    assert!(server_count(&admin, &tenant.user, &tenant.db).await <= 1);
}

/// Hammers `url` from `clients` tasks with short transactions for `rounds`.
async fn load(url: &str, clients: usize, rounds: usize) {
    let url = Arc::new(url.to_owned());
    let mut tasks = Vec::new();
    for i in 0..clients {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let client = connect(&url).await;
            for r in 0..rounds {
                client
                    .batch_execute("BEGIN; SELECT pg_sleep(0.02); COMMIT")
                    .await
                    .unwrap_or_else(|e| panic!("client {i} round {r}: {}", describe(&e)));
            }
        }));
    }
    for t in tasks {
        t.await.expect("load task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_db_connections_caps_servers_across_users_of_a_database() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "maxdb");
    let other = tenant.add_role(cluster, "b");
    let userlist = format!("{}\"{other}\" \"pw\"\n", tenant.userlist());
    let sluice = SluiceProcess::start(
        sluice_bin(),
        &ini(cluster, "transaction", 5, "max_db_connections = 2"),
        &userlist,
    );
    let url_a = tenant.url(&sluice);
    let url_b = sluice.url(&other, "pw", &tenant.db);
    let sampler = Sampler::start(superuser(cluster).await, "", Some(&tenant.db));
    let finished = tokio::time::timeout(Duration::from_secs(30), async {
        // One after the other (the first's idle servers hold the
        // shared slots), then both at once.
        load(&url_a, 4, 2).await;
        load(&url_b, 4, 2).await;
        futures_util::future::join(load(&url_a, 6, 5), load(&url_b, 6, 5)).await;
    })
    .await;
    let max = sampler.finish().await;
    assert!(
        finished.is_ok(),
        "two users sharing max_db_connections = 2 did not finish in 30 s\n--- sluice log ---\n{}",
        log_tail(&sluice, 20)
    );
    assert!(max >= 1);
    assert!(
        max <= 2,
        "saw {max} servers for the database, max_db_connections = 2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_user_connections_caps_servers_across_databases_of_a_user() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "maxuser");
    let second_db = format!("{}_second", tenant.db);
    cluster.psql(
        "postgres",
        &format!("CREATE DATABASE {second_db} OWNER {};", tenant.user),
    );
    let sluice = start_sluice(
        cluster,
        &tenant,
        "transaction",
        5,
        "max_user_connections = 2",
    );
    let url_a = tenant.url(&sluice);
    let url_b = sluice.url(&tenant.user, &tenant.password, &second_db);
    let sampler = Sampler::start(superuser(cluster).await, &tenant.user, None);
    let finished = tokio::time::timeout(Duration::from_secs(30), async {
        // One after the other (the first's idle servers hold the
        // shared slots), then both at once.
        load(&url_a, 4, 2).await;
        load(&url_b, 4, 2).await;
        futures_util::future::join(load(&url_a, 6, 5), load(&url_b, 6, 5)).await;
    })
    .await;
    let max = sampler.finish().await;
    assert!(
        finished.is_ok(),
        "two databases sharing max_user_connections = 2 did not finish in 30 s\n--- sluice log ---\n{}",
        log_tail(&sluice, 20)
    );
    assert!(max >= 1);
    assert!(
        max <= 2,
        "saw {max} servers for the user, max_user_connections = 2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_database_pool_size_overrides_the_default() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "dbsize");
    let ini = ini(cluster, "transaction", 5, "").replacen(
        "[databases]\n",
        &format!(
            "[databases]\n{db} = host=127.0.0.1 port={port} dbname={db} pool_size=2\n",
            db = tenant.db,
            port = cluster.port
        ),
        1,
    );
    let sluice = SluiceProcess::start(sluice_bin(), &ini, &tenant.userlist());
    let sampler = Sampler::start(superuser(cluster).await, &tenant.user, Some(&tenant.db));
    load(&tenant.url(&sluice), 8, 5).await;
    let max = sampler.finish().await;
    assert!(max >= 1);
    assert!(
        max <= 2,
        "saw {max} servers, pool_size = 2 for the database"
    );
}

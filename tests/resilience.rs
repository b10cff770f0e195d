//! End-to-end resilience: clients that vanish mid-transaction or mid-COPY,
//! errors inside transactions, servers that die, and a PostgreSQL that
//! restarts under a running Sluice. The next client must always get a clean,
//! working server.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use futures_util::{pin_mut, SinkExt, StreamExt};
use sluice_testkit::{try_connect, PgCluster};
use tokio_postgres::Client;

/// A tenant with an empty table `t (x int)` it owns.
fn tenant_with_table(cluster: &PgCluster, tag: &str) -> Tenant {
    let tenant = Tenant::create(cluster, tag);
    tenant.psql(
        cluster,
        &format!(
            "CREATE TABLE t (x int); ALTER TABLE t OWNER TO {};",
            tenant.user
        ),
    );
    tenant
}

/// What a client that takes over the pool must see: no rows of the
/// vanished client, no open transaction, no server left inside one, and a
/// working pool.
async fn assert_clean_pool(cluster: &PgCluster, tenant: &Tenant, next: &Client) {
    assert_eq!(
        first_value(next, "SELECT count(*) FROM t").await,
        "0",
        "uncommitted rows of a vanished client are visible"
    );
    assert_eq!(
        first_value(next, "SELECT txid_current_if_assigned() IS NULL").await,
        "t",
        "the next client landed inside someone else's transaction"
    );
    next.batch_execute("BEGIN; INSERT INTO t VALUES (42); COMMIT")
        .await
        .unwrap_or_else(|e| panic!("next client's transaction: {}", describe(&e)));
    assert_eq!(first_value(next, "SELECT count(*) FROM t").await, "1");
    next.batch_execute("DELETE FROM t").await.unwrap();
    let admin = superuser(cluster).await;
    let stuck = first_value(
        &admin,
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = '{}' \
             AND state LIKE 'idle in transaction%'",
            tenant.user
        ),
    )
    .await;
    assert_eq!(stuck, "0", "a server was left idle in a transaction");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_dropping_its_socket_mid_transaction_leaves_the_next_client_a_clean_server() {
    let cluster = PgCluster::shared();
    let tenant = tenant_with_table(cluster, "drop");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    let url = tenant.url(&sluice);
    let vanishing = AbortableClient::connect(&url).await;
    vanishing
        .client
        .batch_execute("BEGIN; INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    vanishing.kill().await;

    let next = connect(&url).await;
    assert_clean_pool(cluster, &tenant, &next).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_saying_goodbye_mid_transaction_leaves_the_next_client_a_clean_server() {
    let cluster = PgCluster::shared();
    let tenant = tenant_with_table(cluster, "bye");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    let url = tenant.url(&sluice);
    let leaving = connect(&url).await;
    leaving
        .batch_execute("BEGIN; INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    // Dropping the client sends Terminate while the transaction is open.
    drop(leaving);

    let next = connect(&url).await;
    assert_clean_pool(cluster, &tenant, &next).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_failing_in_a_transaction_then_vanishing_leaves_a_clean_server() {
    let cluster = PgCluster::shared();
    let tenant = tenant_with_table(cluster, "failgone");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    let url = tenant.url(&sluice);
    let vanishing = AbortableClient::connect(&url).await;
    vanishing
        .client
        .batch_execute("BEGIN; INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    vanishing
        .client
        .batch_execute("SELECT 1 / 0")
        .await
        .expect_err("division by zero");
    vanishing.kill().await;

    let next = connect(&url).await;
    assert_clean_pool(cluster, &tenant, &next).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_killed_mid_transaction_leaves_the_next_client_a_clean_server() {
    let cluster = PgCluster::shared();
    let tenant = tenant_with_table(cluster, "killpsql");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    let mut psql = psql_through(&sluice, &tenant)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run psql");
    let mut stdin = psql.stdin.take().unwrap();
    stdin
        .write_all(b"BEGIN;\nINSERT INTO t VALUES (1);\nSELECT 'inside';\n")
        .unwrap();
    stdin.flush().unwrap();
    let mut stdout = BufReader::new(psql.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        let n = stdout.read_line(&mut line).unwrap();
        assert!(n > 0, "psql ended before its transaction was open");
        if line.trim() == "inside" {
            break;
        }
    }
    psql.kill().unwrap();
    psql.wait().unwrap();

    let next = connect(&tenant.url(&sluice)).await;
    assert_clean_pool(cluster, &tenant, &next).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_killed_mid_copy_in_leaves_the_next_client_a_clean_server() {
    let cluster = PgCluster::shared();
    let tenant = tenant_with_table(cluster, "killcopy");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    let mut psql = psql_through(&sluice, &tenant)
        .args(["-c", "\\copy t FROM STDIN"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run psql");
    let mut stdin = psql.stdin.take().unwrap();
    for i in 0..1000 {
        writeln!(stdin, "{i}").unwrap();
    }
    stdin.flush().unwrap();
    let admin = superuser(cluster).await;
    let copying = wait_for(Duration::from_secs(5), || async {
        first_value(
            &admin,
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = '{}' \
                 AND query LIKE 'COPY%' AND state = 'active'",
                tenant.user
            ),
        )
        .await
            == "1"
    })
    .await;
    assert!(copying, "the COPY never started");
    psql.kill().unwrap();
    psql.wait().unwrap();
    drop(stdin);

    let next = connect(&tenant.url(&sluice)).await;
    assert_clean_pool(cluster, &tenant, &next).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_vanishing_mid_copy_in_leaves_the_next_client_a_clean_server() {
    let cluster = PgCluster::shared();
    let tenant = tenant_with_table(cluster, "copyin");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    let url = tenant.url(&sluice);
    let mut vanishing = AbortableClient::connect(&url).await;
    {
        let tx = vanishing.client.transaction().await.unwrap();
        let sink = tx.copy_in("COPY t FROM STDIN").await.unwrap();
        pin_mut!(sink);
        sink.send(std::io::Cursor::new(b"1\n2\n3\n".to_vec()))
            .await
            .unwrap();
        // Push the data out, then vanish without CopyDone or CopyFail.
        sink.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        vanishing.connection.abort();
        drop(tx);
    }
    vanishing.kill().await;

    let next = connect(&url).await;
    assert_clean_pool(cluster, &tenant, &next).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_vanishing_mid_copy_out_leaves_the_next_client_a_working_server() {
    let cluster = PgCluster::shared();
    let tenant = tenant_with_table(cluster, "copyout");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    let url = tenant.url(&sluice);
    let mut vanishing = AbortableClient::connect(&url).await;
    {
        let tx = vanishing.client.transaction().await.unwrap();
        let stream = tx
            .copy_out(
                "COPY (SELECT i, repeat('y', 500) FROM generate_series(1, 200000) i) TO STDOUT",
            )
            .await
            .unwrap();
        pin_mut!(stream);
        let first = stream.next().await.expect("some COPY data").unwrap();
        assert!(!first.is_empty());
        vanishing.connection.abort();
        drop(tx);
    }
    vanishing.kill().await;

    let next = connect(&url).await;
    assert_clean_pool(cluster, &tenant, &next).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_vanishing_while_its_query_runs_gets_it_cancelled_before_the_slot_is_reused() {
    let cluster = PgCluster::shared();
    let tenant = tenant_with_table(cluster, "running");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    let url = tenant.url(&sluice);
    let AbortableClient { client, connection } = AbortableClient::connect(&url).await;
    let query = tokio::spawn(async move {
        client
            .batch_execute("INSERT INTO t SELECT 1 FROM pg_sleep(60)")
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    connection.abort();
    let _ = connection.await;
    let _ = query.await;

    // The only slot is free again once the sleeping backend is gone: Sluice
    // cancels the query and waits for the backend to exit, so PostgreSQL
    // never has more of this pool's backends than pool_size (1), and the
    // 60 s query does not run on.
    let next = connect(&url).await;
    assert_eq!(
        first_value(&next, "SELECT txid_current_if_assigned() IS NULL").await,
        "t"
    );
    let admin = superuser(cluster).await;
    assert_eq!(server_count(&admin, &tenant.user, &tenant.db).await, 1);
    assert_eq!(
        first_value(
            &admin,
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' \
             AND pid <> pg_backend_pid()"
        )
        .await,
        "0"
    );
    assert_clean_pool(cluster, &tenant, &next).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_vanishing_mid_transaction_do_not_leak_servers() {
    let cluster = PgCluster::shared();
    let tenant = tenant_with_table(cluster, "leak");
    let sluice = start_sluice(cluster, &tenant, "transaction", 3, "");
    let url = tenant.url(&sluice);
    let mut tasks = Vec::new();
    for i in 0..30 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let c = AbortableClient::connect(&url).await;
            c.client
                .batch_execute(&format!("BEGIN; INSERT INTO t VALUES ({i})"))
                .await
                .unwrap_or_else(|e| panic!("client {i}: {}", describe(&e)));
            if i % 2 == 0 {
                c.kill().await;
            } else {
                drop(c.client);
                let _ = c.connection.await;
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .expect("vanishing clients did not all get a server")
            .unwrap();
    }
    let admin = superuser(cluster).await;
    assert!(server_count(&admin, &tenant.user, &tenant.db).await <= 3);
    let next = connect(&url).await;
    assert_clean_pool(cluster, &tenant, &next).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_inside_a_transaction_keeps_the_server_until_rollback() {
    let cluster = PgCluster::shared();
    let tenant = tenant_with_table(cluster, "txerr");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    let url = tenant.url(&sluice);
    let failing = connect(&url).await;
    failing
        .batch_execute("BEGIN; INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let err = failing
        .batch_execute("SELECT 1 / 0")
        .await
        .expect_err("division by zero");
    assert_eq!(err.code().map(|c| c.code()), Some("22012"));
    // Still in the failed transaction: the same server says so.
    let err = failing
        .batch_execute("SELECT 1")
        .await
        .expect_err("a failed transaction accepted a query");
    assert_eq!(err.code().map(|c| c.code()), Some("25P02"));

    let other = connect(&url).await;
    let waiting = tokio::spawn(async move {
        let v = first_value(&other, "SELECT count(*) FROM t").await;
        (other, v)
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !waiting.is_finished(),
        "another client got the server of a failed, open transaction"
    );
    failing.batch_execute("ROLLBACK").await.unwrap();
    let (other, seen) = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("server not released after ROLLBACK")
        .unwrap();
    assert_eq!(seen, "0");
    assert_clean_pool(cluster, &tenant, &other).await;
    assert_eq!(first_value(&failing, "SELECT 'again'").await, "again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_backend_fails_only_its_client_and_the_pool_recovers() {
    let cluster = PgCluster::shared();
    let tenant = tenant_with_table(cluster, "term");
    let sluice = start_sluice(cluster, &tenant, "transaction", 2, "");
    let url = tenant.url(&sluice);
    let victim = connect(&url).await;
    let bystander = connect(&url).await;
    victim
        .batch_execute("BEGIN; INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let pid = first_value(&victim, "SELECT pg_backend_pid()").await;
    let admin = superuser(cluster).await;
    assert_eq!(
        first_value(&admin, &format!("SELECT pg_terminate_backend({pid})")).await,
        "t"
    );
    let err = tokio::time::timeout(Duration::from_secs(5), victim.simple_query("SELECT 1"))
        .await
        .expect("the client of a killed server hangs")
        .expect_err("the client of a killed server did not see an error");
    let _ = describe(&err);

    assert_eq!(first_value(&bystander, "SELECT 'fine'").await, "fine");
    let fresh = connect(&url).await;
    assert_clean_pool(cluster, &tenant, &fresh).await;
    // Both servers can be used at once again.
    let (a, b) = tokio::join!(
        bystander.simple_query("SELECT pg_sleep(0.2)"),
        fresh.simple_query("SELECT pg_sleep(0.2)")
    );
    a.unwrap();
    b.unwrap();
    assert!(server_count(&admin, &tenant.user, &tenant.db).await <= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_server_killed_in_the_pool_is_not_handed_to_the_next_client() {
    let cluster = PgCluster::shared();
    let tenant = tenant_with_table(cluster, "idlekill");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    let client = connect(&tenant.url(&sluice)).await;
    let pid = first_value(&client, "SELECT pg_backend_pid()").await;
    let admin = superuser(cluster).await;
    assert_eq!(
        first_value(&admin, &format!("SELECT pg_terminate_backend({pid})")).await,
        "t"
    );
    let gone = wait_for(Duration::from_secs(5), || async {
        server_count(&admin, &tenant.user, &tenant.db).await == 0
    })
    .await;
    assert!(gone);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The client held no server when it died, so it must not notice.
    let new_pid = try_value(&client, "SELECT pg_backend_pid()")
        .await
        .unwrap_or_else(|e| {
            panic!(
                "a dead idle server was lent out: {}\n--- sluice log ---\n{}",
                describe(&e),
                log_tail(&sluice, 20)
            )
        });
    assert_ne!(new_pid, pid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_under_a_running_sluice_then_queries_work_again() {
    let (cluster, tenant) = private_cluster("restart_user");
    let sluice = start_sluice(
        &cluster,
        &tenant,
        "transaction",
        2,
        "query_wait_timeout = 10",
    );
    let url = tenant.url(&sluice);
    let idle = connect(&url).await;
    assert_eq!(first_value(&idle, "SELECT 1").await, "1");
    let in_tx = connect(&url).await;
    in_tx.batch_execute("BEGIN; SELECT 1").await.unwrap();

    tokio::task::block_in_place(|| cluster.restart());

    let err = tokio::time::timeout(Duration::from_secs(10), in_tx.simple_query("SELECT 2"))
        .await
        .expect("client inside a transaction hangs after the restart")
        .expect_err("transaction survived a server restart");
    let _ = describe(&err);

    let fresh = retry(Duration::from_secs(15), || async {
        let c = try_connect(&url).await?;
        try_value(&c, "SELECT 'fresh'").await.map(|v| (c, v))
    })
    .await
    .map(|(_, v)| v)
    .unwrap_or_else(|e| {
        panic!(
            "no client works 15 s after the restart: {}\n--- sluice log ---\n{}",
            describe(&e),
            log_tail(&sluice, 30)
        )
    });
    assert_eq!(fresh, "fresh");
    // The client that held no server during the restart goes on as if
    // nothing happened.
    let v = try_value(&idle, "SELECT 'still here'")
        .await
        .unwrap_or_else(|e| {
            panic!(
                "idle client broken by the restart: {}\n--- sluice log ---\n{}",
                describe(&e),
                log_tail(&sluice, 30)
            )
        });
    assert_eq!(v, "still here");
    // Pool is whole again: two transactions at once.
    let other = connect(&url).await;
    let (a, b) = tokio::join!(
        idle.simple_query("SELECT pg_sleep(0.2)"),
        other.simple_query("SELECT pg_sleep(0.2)")
    );
    a.unwrap();
    b.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_gives_clients_errors_and_service_resumes_when_it_is_back() {
    let (cluster, tenant) = private_cluster("down_user");
    let sluice = start_sluice(
        &cluster,
        &tenant,
        "transaction",
        2,
        "query_wait_timeout = 3",
    );
    let url = tenant.url(&sluice);
    let client = connect(&url).await;
    assert_eq!(first_value(&client, "SELECT 1").await, "1");

    tokio::task::block_in_place(|| cluster.stop());
    let started = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(15), client.simple_query("SELECT 2"))
        .await
        .expect("a query hangs while PostgreSQL is down");
    assert!(r.is_err(), "a query succeeded while PostgreSQL was down");
    assert!(started.elapsed() < Duration::from_secs(10));

    tokio::task::block_in_place(|| cluster.start_again());
    let back = retry(Duration::from_secs(15), || async {
        let c = try_connect(&url).await?;
        try_value(&c, "SELECT 'back'").await
    })
    .await
    .unwrap_or_else(|e| {
        panic!(
            "no client works 15 s after PostgreSQL came back: {}\n--- sluice log ---\n{}",
            describe(&e),
            log_tail(&sluice, 30)
        )
    });
    assert_eq!(back, "back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_mode_client_vanishing_mid_transaction_leaves_a_reset_server() {
    let cluster = PgCluster::shared();
    let tenant = tenant_with_table(cluster, "sessdrop");
    let sluice = start_sluice(cluster, &tenant, "session", 1, "");
    let url = tenant.url(&sluice);
    let vanishing = AbortableClient::connect(&url).await;
    let default_work_mem = first_value(&vanishing.client, "SHOW work_mem").await;
    vanishing
        .client
        .batch_execute("SET work_mem = '3333kB'; BEGIN; INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    vanishing.kill().await;

    let next = connect(&url).await;
    assert_eq!(first_value(&next, "SHOW work_mem").await, default_work_mem);
    assert_clean_pool(cluster, &tenant, &next).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_outside_a_transaction_gives_the_server_back_at_once() {
    let cluster = PgCluster::shared();
    let tenant = tenant_with_table(cluster, "plainerr");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "query_wait_timeout = 2");
    let url = tenant.url(&sluice);
    let failing = connect(&url).await;
    let other = connect(&url).await;
    for round in 0..5 {
        let err = failing
            .batch_execute("SELECT 1; SELECT 1 / 0; SELECT 2")
            .await
            .expect_err("division by zero");
        assert_eq!(err.code().map(|c| c.code()), Some("22012"));
        assert_eq!(
            first_value(&other, "SELECT 'other'").await,
            "other",
            "round {round}"
        );
    }
    assert_clean_pool(cluster, &tenant, &other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_terminating_with_a_query_in_flight_does_not_leak_its_results() {
    let cluster = PgCluster::shared();
    let tenant = tenant_with_table(cluster, "inflight");
    let ini = ini(cluster, "transaction", 1, "").replace("auth_type = md5", "auth_type = plain");
    let sluice = sluice_testkit::SluiceProcess::start(sluice_bin(), &ini, &tenant.userlist());
    let next = connect(&tenant.url(&sluice)).await;
    for round in 0..5 {
        let mut raw = RawClient::connect(sluice.port, &tenant.user, "pw", &tenant.db, &[]).await;
        let mut packet = raw_message(
            b'Q',
            b"SELECT 'leaked' FROM pg_sleep(0.3); SELECT 'leaked again'\0",
        );
        packet.extend(raw_parse_bind_execute("SELECT 'leaked by extended'"));
        packet.extend(raw_message(b'S', &[]));
        packet.extend(raw_message(b'X', &[]));
        raw.send_raw(&packet).await;
        drop(raw);
        for i in 0..3 {
            let v = first_value(&next, &format!("SELECT 'mine {i}'")).await;
            assert_eq!(v, format!("mine {i}"), "round {round}");
        }
    }
    assert_clean_pool(cluster, &tenant, &next).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_leaving_the_wait_queue_does_not_strand_a_server() {
    let cluster = PgCluster::shared();
    let tenant = tenant_with_table(cluster, "queueleave");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "query_wait_timeout = 5");
    let url = tenant.url(&sluice);
    let holder = connect(&url).await;
    holder.batch_execute("BEGIN; SELECT 1").await.unwrap();
    let mut quitters = Vec::new();
    for _ in 0..3 {
        let AbortableClient { client, connection } = AbortableClient::connect(&url).await;
        let q = tokio::spawn(async move { client.batch_execute("SELECT 'queued'").await });
        quitters.push((q, connection));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (q, connection) in quitters {
        connection.abort();
        let _ = connection.await;
        let _ = q.await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    holder.batch_execute("COMMIT").await.unwrap();
    let next = connect(&url).await;
    let started = Instant::now();
    assert_eq!(first_value(&next, "SELECT 'served'").await, "served");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_clean_pool(cluster, &tenant, &next).await;
    let admin = superuser(cluster).await;
    assert_eq!(server_count(&admin, &tenant.user, &tenant.db).await, 1);
}

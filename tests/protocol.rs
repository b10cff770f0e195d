//! End-to-end protocol behaviour through Sluice: psql, parameter sync
//! between clients sharing a server, startup settings, cancel, COPY, notices
//! and notifications, pipelined extended queries and very large messages.

mod common;

use std::io::{Cursor, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use futures_util::future::join_all;
use futures_util::{pin_mut, SinkExt, StreamExt};
use sluice_testkit::{try_connect, url_encode, PgCluster, SluiceProcess};
use tokio_postgres::types::Type;
use tokio_postgres::{AsyncMessage, NoTls};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_runs_commands_through_sluice() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "psql");
    let sluice = start_sluice(cluster, &tenant, "transaction", 2, "");
    let out = psql_through(&sluice, &tenant)
        .args(["-c", "SELECT 'hello' || 40 + 2"])
        .args([
            "-c",
            "CREATE TABLE p (x int); INSERT INTO p SELECT generate_series(1, 10)",
        ])
        .args([
            "-c",
            "SELECT sum(x), current_user, current_database() FROM p",
        ])
        .output()
        .expect("run psql");
    assert!(out.status.success(), "psql failed: {}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines,
        vec![
            "hello42",
            "CREATE TABLE",
            "INSERT 0 10",
            &format!("55|{}|{}", tenant.user, tenant.db)
        ],
        "{}",
        show(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_copy_meta_command_moves_rows_both_ways() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "pcopy");
    tenant.psql(
        cluster,
        &format!(
            "CREATE TABLE c (id int, label text); ALTER TABLE c OWNER TO {};",
            tenant.user
        ),
    );
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    let mut input = String::new();
    for i in 0..5000 {
        input.push_str(&format!("{i}\tlabel {i}\n"));
    }
    let mut child = psql_through(&sluice, &tenant)
        .args(["-c", "\\copy c FROM STDIN"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run psql");
    let mut stdin = child.stdin.take().unwrap();
    let data = input.clone();
    let writer = std::thread::spawn(move || stdin.write_all(data.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "\\copy in failed: {}", show(&out));

    let out = psql_through(&sluice, &tenant)
        .args(["-c", "\\copy (SELECT * FROM c ORDER BY id) TO STDOUT"])
        .output()
        .unwrap();
    assert!(out.status.success(), "\\copy out failed: {}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout) == input,
        "COPY TO STDOUT does not give back what COPY FROM STDIN took"
    );
}

/// `application_name`, `TimeZone` and the backend pid, as one client sees them.
async fn settings(client: &tokio_postgres::Client) -> (String, String, String) {
    let messages = client
        .simple_query(
            "SELECT current_setting('application_name'), current_setting('TimeZone'), \
             pg_backend_pid()",
        )
        .await
        .unwrap_or_else(|e| panic!("{}", describe(&e)));
    let row = rows(&messages).remove(0);
    let get = |i: usize| row[i].clone().unwrap_or_default();
    (get(0), get(1), get(2))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_name_and_timezone_follow_each_client_on_a_shared_server() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "params");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    let default_tz = first_value(&superuser(cluster).await, "SHOW TimeZone").await;
    assert_ne!(default_tz, "Asia/Tokyo");

    let alpha = connect(&tenant.url_with(
        &sluice,
        &format!(
            "application_name=alpha&options={}",
            url_encode("-c TimeZone=Asia/Tokyo")
        ),
    ))
    .await;
    let beta = connect(&tenant.url_with(&sluice, "application_name=beta")).await;
    // Same settings as beta: the server is taken as already in line.
    let gamma = connect(&tenant.url_with(&sluice, "application_name=beta")).await;

    let mut pids = Vec::new();
    for round in 0..40 {
        let expected_alpha = if round < 20 { "alpha" } else { "alpha_renamed" };
        let (app, tz, pid) = settings(&alpha).await;
        assert_eq!(
            (app.as_str(), tz.as_str()),
            (expected_alpha, "Asia/Tokyo"),
            "round {round}: alpha"
        );
        pids.push(pid);
        let (app, tz, pid) = settings(&beta).await;
        assert_eq!(
            (app.as_str(), tz.as_str()),
            ("beta", default_tz.as_str()),
            "round {round}: beta"
        );
        pids.push(pid);
        let (app, tz, _) = settings(&gamma).await;
        assert_eq!(
            (app.as_str(), tz.as_str()),
            ("beta", default_tz.as_str()),
            "round {round}: gamma"
        );
        if round == 10 {
            // gamma changes its own setting; beta must not see it.
            gamma
                .batch_execute("SET application_name = 'gamma'")
                .await
                .unwrap();
            let (app, _, _) = settings(&beta).await;
            assert_eq!(app, "beta", "beta after gamma's SET");
            gamma
                .batch_execute("SET application_name = 'beta'")
                .await
                .unwrap();
        }
        if round == 19 {
            // A SET outside a transaction becomes alpha's own setting.
            alpha
                .batch_execute("SET application_name = 'alpha_renamed'")
                .await
                .unwrap();
        }
    }
    pids.dedup();
    assert_eq!(pids.len(), 1, "both clients should share the one server");

    // Concurrently, too: the two must never see each other's settings.
    let check = |client: tokio_postgres::Client, app: &'static str, tz: String| async move {
        for i in 0..30 {
            let (a, t, _) = settings(&client).await;
            assert_eq!(
                (a.as_str(), t.as_str()),
                (app, tz.as_str()),
                "iteration {i}"
            );
        }
    };
    tokio::join!(
        check(alpha, "alpha_renamed", "Asia/Tokyo".to_owned()),
        check(beta, "beta", default_tz.clone())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libpq_startup_parameters_follow_the_client_on_a_shared_server() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "libpq");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    let admin = superuser(cluster).await;
    let default_tz = first_value(&admin, "SHOW TimeZone").await;
    let default_ds = first_value(&admin, "SHOW DateStyle").await;
    let other = connect(&tenant.url_with(&sluice, "application_name=other")).await;

    for round in 0..6 {
        // libpq sends PGTZ, PGDATESTYLE and PGAPPNAME as startup parameters.
        let out = psql_through(&sluice, &tenant)
            .env("PGTZ", "America/Santiago")
            .env("PGDATESTYLE", "SQL, DMY")
            .env("PGAPPNAME", "from_psql")
            .args(["-c", "SHOW TimeZone", "-c", "SHOW DateStyle"])
            .args(["-c", "SHOW application_name"])
            .output()
            .unwrap();
        assert!(out.status.success(), "psql: {}", show(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            lines,
            vec!["America/Santiago", "SQL, DMY", "from_psql"],
            "round {round}"
        );
        let seen = first_value(
            &other,
            "SELECT current_setting('TimeZone') || '|' || current_setting('DateStyle') \
             || '|' || current_setting('application_name')",
        )
        .await;
        assert_eq!(
            seen,
            format!("{default_tz}|{default_ds}|other"),
            "round {round}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_startup_settings_from_options_follow_the_client() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "extra");
    tenant.psql(
        cluster,
        &format!(
            "CREATE SCHEMA special AUTHORIZATION {u}; \
             CREATE TABLE special.marker (v text); INSERT INTO special.marker VALUES ('special'); \
             ALTER TABLE special.marker OWNER TO {u}; \
             CREATE TABLE public.marker (v text); INSERT INTO public.marker VALUES ('public'); \
             ALTER TABLE public.marker OWNER TO {u};",
            u = tenant.user
        ),
    );
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    let custom = connect(&tenant.url_with(
        &sluice,
        &format!(
            "options={}",
            url_encode(
                "-c search_path=special,public -c statement_timeout=1234 -c extra_float_digits=1"
            )
        ),
    ))
    .await;
    let plain = connect(&tenant.url(&sluice)).await;
    let query = "SELECT (SELECT v FROM marker) || '|' || current_setting('statement_timeout') \
                 || '|' || current_setting('extra_float_digits')";
    for round in 0..10 {
        assert_eq!(
            first_value(&custom, query).await,
            "special|1234ms|1",
            "round {round}: custom"
        );
        assert_eq!(
            first_value(&plain, query).await,
            "public|0|1",
            "round {round}: plain"
        );
    }
    // The timeout is live for the client that asked for it, and only for it.
    let err = custom
        .simple_query("SELECT pg_sleep(3)")
        .await
        .expect_err("statement_timeout = 1234 ms did not apply");
    assert_eq!(
        err.code().map(|c| c.code()),
        Some("57014"),
        "{}",
        describe(&err)
    );
    plain
        .simple_query("SELECT pg_sleep(1.5)")
        .await
        .unwrap_or_else(|e| panic!("the other client got the timeout: {}", describe(&e)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_startup_settings_fail_the_login_with_the_servers_error() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "badopt");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");

    let banana = tenant.url_with(
        &sluice,
        &format!("options={}", url_encode("-c work_mem=banana")),
    );
    let Err(err) = try_connect(&banana).await else {
        panic!("login with work_mem=banana succeeded");
    };
    let text = describe(&err);
    assert!(
        text.contains("invalid value for parameter \"work_mem\""),
        "got {text}"
    );
    assert_eq!(err.code().map(|c| c.code()), Some("22023"), "got {text}");

    let unknown = tenant.url_with(
        &sluice,
        &format!("options={}", url_encode("-c nonexistent_xyz=1")),
    );
    let Err(err) = try_connect(&unknown).await else {
        panic!("login with an unknown setting succeeded");
    };
    let text = describe(&err);
    assert!(
        text.contains("unrecognized configuration parameter \"nonexistent_xyz\""),
        "got {text}"
    );

    // The pool is not poisoned by either.
    let good = connect(&tenant.url(&sluice)).await;
    assert_eq!(first_value(&good, "SHOW work_mem").await, "4MB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_request_cancels_only_the_targeted_query() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "cancel");
    let sluice = start_sluice(cluster, &tenant, "transaction", 2, "");
    let url = tenant.url(&sluice);
    let victim = connect(&url).await;
    let bystander = connect(&url).await;
    let victim_token = victim.cancel_token();
    let bystander_token = bystander.cancel_token();

    let started = Instant::now();
    let victim_query = tokio::spawn(async move {
        let r = victim.simple_query("SELECT pg_sleep(30)").await;
        (victim, r)
    });
    let bystander_query =
        tokio::spawn(async move { bystander.simple_query("SELECT pg_sleep(30)").await });
    let admin = superuser(cluster).await;
    let both_running = wait_for(Duration::from_secs(5), || async {
        let n = first_value(
            &admin,
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = '{}' \
                 AND state = 'active' AND query LIKE '%pg_sleep(30)%'",
                tenant.user
            ),
        )
        .await;
        n == "2"
    })
    .await;
    assert!(both_running, "the two sleeps never ran at once");

    victim_token
        .cancel_query(NoTls)
        .await
        .unwrap_or_else(|e| panic!("cancel request: {}", describe(&e)));
    let (victim, result) = tokio::time::timeout(Duration::from_secs(5), victim_query)
        .await
        .expect("the cancelled query still runs 5 s after the cancel request")
        .unwrap();
    let err = result.expect_err("pg_sleep(30) finished without error");
    assert_eq!(
        err.code().map(|c| c.code()),
        Some("57014"),
        "{}",
        describe(&err)
    );
    assert!(started.elapsed() < Duration::from_secs(15));

    // The other sleep keeps running.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !bystander_query.is_finished(),
        "the other client's query ended too"
    );
    let still = first_value(
        &admin,
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = '{}' \
             AND state = 'active' AND query LIKE '%pg_sleep(30)%'",
            tenant.user
        ),
    )
    .await;
    assert_eq!(still, "1");
    // The cancelled client carries on.
    assert_eq!(first_value(&victim, "SELECT 'after'").await, "after");

    bystander_token.cancel_query(NoTls).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(5), bystander_query)
        .await
        .expect("second cancel had no effect")
        .unwrap();
    let err = r.expect_err("second sleep finished without error");
    assert_eq!(err.code().map(|c| c.code()), Some("57014"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_from_a_client_without_a_server_does_not_touch_other_clients() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "cancel2");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    let url = tenant.url(&sluice);
    let idle = connect(&url).await;
    let busy = connect(&url).await;
    // Both used the one server; now `idle` holds nothing.
    assert_eq!(first_value(&idle, "SELECT 1").await, "1");
    assert_eq!(first_value(&busy, "SELECT 1").await, "1");

    let busy_query = tokio::spawn(async move { busy.simple_query("SELECT pg_sleep(1.5)").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    idle.cancel_token().cancel_query(NoTls).await.unwrap();
    let r = busy_query.await.unwrap();
    assert!(
        r.is_ok(),
        "a cancel from a client holding no server cancelled another client's query: {}",
        describe(&r.unwrap_err())
    );
    assert_eq!(first_value(&idle, "SELECT 2").await, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_in_and_copy_out_round_trip_through_tokio_postgres() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "copy");
    tenant.psql(
        cluster,
        &format!(
            "CREATE TABLE c (id int, payload text); ALTER TABLE c OWNER TO {};",
            tenant.user
        ),
    );
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    let url = tenant.url(&sluice);
    let mut client = connect(&url).await;
    let other = connect(&url).await;

    let mut data = Vec::new();
    for i in 0..100_000 {
        writeln!(data, "{i}\tpayload number {i}").unwrap();
    }
    {
        let tx = client.transaction().await.unwrap();
        let sink = tx.copy_in("COPY c FROM STDIN").await.unwrap();
        pin_mut!(sink);
        for chunk in data.chunks(64 * 1024) {
            sink.send(Cursor::new(chunk.to_vec())).await.unwrap();
        }
        let n = sink.finish().await.unwrap();
        assert_eq!(n, 100_000);
        tx.commit().await.unwrap();
    }
    assert_eq!(
        first_value(&other, "SELECT count(*) FROM c").await,
        "100000"
    );

    let mut out = Vec::new();
    {
        let tx = client.transaction().await.unwrap();
        let stream = tx
            .copy_out("COPY (SELECT * FROM c ORDER BY id) TO STDOUT")
            .await
            .unwrap();
        pin_mut!(stream);
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        tx.commit().await.unwrap();
    }
    assert!(out == data, "COPY OUT differs from what went in");

    // An aborted COPY IN (CopyFail) leaves nothing behind.
    {
        let tx = client.transaction().await.unwrap();
        let sink = tx.copy_in("COPY c FROM STDIN").await.unwrap();
        {
            pin_mut!(sink);
            sink.send(Cursor::new(b"-1\tnever\n".to_vec()))
                .await
                .unwrap();
            // Dropped unfinished: tokio-postgres sends CopyFail.
        }
        // The failed COPY aborted the transaction (and COMMIT of an aborted
        // transaction answers "ROLLBACK" without error).
        let err = tx
            .simple_query("SELECT 1")
            .await
            .expect_err("the transaction went on after CopyFail");
        assert_eq!(
            err.code().map(|c| c.code()),
            Some("25P02"),
            "{}",
            describe(&err)
        );
        tx.rollback().await.unwrap();
    }
    assert_eq!(
        first_value(&other, "SELECT count(*) FROM c WHERE id = -1").await,
        "0"
    );
    assert_eq!(
        first_value(&other, "SELECT txid_current_if_assigned() IS NULL").await,
        "t"
    );
    assert_eq!(first_value(&client, "SELECT 'usable'").await, "usable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_from_a_do_block_reach_the_client() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "notice");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    let (client, mut messages) = connect_with_messages(&tenant.url(&sluice)).await;
    client
        .batch_execute(
            "DO $$ BEGIN RAISE NOTICE 'hello from %', 'sluice'; \
             RAISE WARNING 'and a warning'; END $$",
        )
        .await
        .unwrap();
    let mut seen = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(2), messages.recv()).await {
        if let AsyncMessage::Notice(n) = m {
            seen.push(format!("{}: {}", n.severity(), n.message()));
            if seen.len() == 2 {
                break;
            }
        }
    }
    assert_eq!(
        seen,
        vec!["NOTICE: hello from sluice", "WARNING: and a warning"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_reaches_a_listener_that_holds_its_server_in_a_transaction() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "notify");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    let (listener, mut messages) = connect_with_messages(&tenant.url(&sluice)).await;
    // Pool of one: the LISTEN stays on the server the next transaction gets.
    listener.batch_execute("LISTEN sluice_chan").await.unwrap();
    listener.batch_execute("BEGIN; SELECT 1").await.unwrap();

    let notifier = connect(&cluster.superuser_url(&tenant.db)).await;
    notifier
        .batch_execute("NOTIFY sluice_chan, 'payload 1'")
        .await
        .unwrap();
    // Delivered when the listener's transaction ends, while it still holds
    // the server.
    listener.batch_execute("SELECT 2; COMMIT").await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match messages.recv().await {
                Some(AsyncMessage::Notification(n)) => {
                    return (n.channel().to_owned(), n.payload().to_owned())
                }
                Some(_) => continue,
                None => panic!("connection closed"),
            }
        }
    })
    .await
    .expect("no notification reached the listener");
    assert_eq!(got, ("sluice_chan".to_owned(), "payload 1".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_reaches_an_idle_listener_in_session_mode() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "notify2");
    let sluice = start_sluice(cluster, &tenant, "session", 1, "");
    let (listener, mut messages) = connect_with_messages(&tenant.url(&sluice)).await;
    listener.batch_execute("LISTEN idle_chan").await.unwrap();
    let notifier = connect(&cluster.superuser_url(&tenant.db)).await;
    notifier
        .batch_execute("NOTIFY idle_chan, 'while idle'")
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match messages.recv().await {
                Some(AsyncMessage::Notification(n)) => return n.payload().to_owned(),
                Some(_) => continue,
                None => panic!("connection closed"),
            }
        }
    })
    .await
    .expect("no notification reached the idle session-mode listener");
    assert_eq!(got, "while idle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_prepared_queries_inside_a_transaction_all_answer_in_order() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "pipe");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    let url = tenant.url(&sluice);
    let mut client = connect(&url).await;
    let other = connect(&url).await;

    let tx = client.transaction().await.unwrap();
    let queries = (0..50i32).map(|i| {
        let tx = &tx;
        async move {
            let row = tx
                .query_one("SELECT $1::int4 * 2, pg_backend_pid()", &[&i])
                .await
                .unwrap_or_else(|e| panic!("query {i}: {}", describe(&e)));
            (i, row.get::<_, i32>(0), row.get::<_, i32>(1))
        }
    });
    // Waits for the transaction to end; must not get in between.
    let other_query = tokio::spawn(async move { first_value(&other, "SELECT 'other'").await });
    let results = join_all(queries).await;
    assert!(
        !other_query.is_finished(),
        "another client ran inside the transaction"
    );
    tx.commit().await.unwrap();
    let other_result = other_query.await.unwrap();
    let pid = results[0].2;
    for (i, doubled, p) in results {
        assert_eq!(doubled, i * 2);
        assert_eq!(p, pid, "query {i} ran on another server");
    }
    assert_eq!(other_result, "other");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_unnamed_extended_queries_outside_transactions_stay_with_their_client() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "unnamed");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    let url = tenant.url(&sluice);
    let a = connect(&url).await;
    let b = connect(&url).await;

    // query_typed: Parse (unnamed), Bind, Describe, Execute, Sync each; run
    // concurrently, they are pipelined with several Syncs outstanding.
    async fn burst(client: &tokio_postgres::Client, tag: &str, round: usize) {
        let queries = (0..20i32).map(|i| async move {
            let row = client
                .query_typed_one(
                    "SELECT $1::int4 + 1000, $2::text, pg_sleep(0.001)::text",
                    &[(&i, Type::INT4), (&tag, Type::TEXT)],
                )
                .await
                .unwrap_or_else(|e| panic!("{tag} round {round} query {i}: {}", describe(&e)));
            (i, row.get::<_, i32>(0), row.get::<_, String>(1))
        });
        for (i, got, who) in join_all(queries).await {
            assert_eq!(got, i + 1000, "{tag} round {round}");
            assert_eq!(
                who, tag,
                "round {round}: an answer went to the wrong client"
            );
        }
    }
    for round in 0..10 {
        tokio::join!(burst(&a, "a", round), burst(&b, "b", round));
    }

    // An error in the middle of a pipeline fails only its own Sync group.
    let queries = (0..10i32).map(|i| {
        let a = &a;
        async move {
            a.query_typed_one("SELECT 10 / $1::int4", &[(&(i - 5), Type::INT4)])
                .await
        }
    });
    let results = join_all(queries).await;
    for (i, r) in results.iter().enumerate() {
        if i == 5 {
            let err = r.as_ref().expect_err("division by zero succeeded");
            assert_eq!(err.code().map(|c| c.code()), Some("22012"));
        } else {
            let row = r
                .as_ref()
                .unwrap_or_else(|e| panic!("query {i}: {}", describe(e)));
            assert_eq!(row.get::<_, i32>(0), 10 / (i as i32 - 5));
        }
    }
    assert_eq!(
        first_value(&b, "SELECT txid_current_if_assigned() IS NULL").await,
        "t"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_megabyte_result_passes_through_intact() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "huge");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    let client = connect(&tenant.url(&sluice)).await;
    let messages = client
        .simple_query(
            "SELECT i, repeat(chr(65 + i % 26), 1000) FROM generate_series(1, 50000) AS i",
        )
        .await
        .unwrap_or_else(|e| panic!("{}", describe(&e)));
    let rows = rows(&messages);
    assert_eq!(rows.len(), 50_000);
    for (n, row) in rows.iter().enumerate() {
        let i = n + 1;
        assert_eq!(row[0].as_deref(), Some(i.to_string().as_str()), "row {n}");
        let letter = char::from(65 + (i % 26) as u8);
        let text = row[1].as_deref().unwrap();
        assert!(
            text.len() == 1000 && text.chars().all(|c| c == letter),
            "row {n} corrupted"
        );
    }
    // And the pool works afterwards.
    assert_eq!(first_value(&client, "SELECT 'after'").await, "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_query_and_parameter_pass_through_intact() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "bigin");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    let client = connect(&tenant.url(&sluice)).await;
    let literal = "x".repeat(16 * 1024 * 1024);
    let length = first_value(&client, &format!("SELECT length('{literal}')")).await;
    assert_eq!(length, (16 * 1024 * 1024).to_string());

    let blob: Vec<u8> = (0..8 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let row = client
        .query_typed_one("SELECT $1::bytea", &[(&blob, Type::BYTEA)])
        .await
        .unwrap_or_else(|e| panic!("{}", describe(&e)));
    let back: Vec<u8> = row.get(0);
    assert!(back == blob, "8 MB bytea did not come back intact");
}

/// Sluice with cleartext client auth, so [`RawClient`] can log in.
fn start_plain_sluice(cluster: &PgCluster, tenant: &Tenant, pool_size: usize) -> SluiceProcess {
    let ini = ini(cluster, "transaction", pool_size, "query_wait_timeout = 10")
        .replace("auth_type = md5", "auth_type = plain");
    SluiceProcess::start(sluice_bin(), &ini, &tenant.userlist())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_query_keeps_its_server_across_flush_until_sync() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "flush");
    let sluice = start_plain_sluice(cluster, &tenant, 1);
    let mut raw = RawClient::connect(sluice.port, &tenant.user, "pw", &tenant.db, &[]).await;

    let mut packet = raw_parse_bind_execute("SELECT pg_backend_pid()");
    packet.extend(raw_message(b'H', &[]));
    raw.send_raw(&packet).await;
    let first = raw.recv_until(b'C').await;
    assert_eq!(raw_tags(&first), "12DC");
    let pid = raw_values(&first).remove(0);

    // No Sync yet: the server is still this client's.
    let other = connect(&tenant.url(&sluice)).await;
    let other_query = tokio::spawn(async move { first_value(&other, "SELECT 'other'").await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !other_query.is_finished(),
        "the server was lent out after a Flush, before Sync"
    );
    raw.send_raw(&packet).await;
    let second = raw.recv_until(b'C').await;
    assert_eq!(raw_tags(&second), "12DC");
    assert_eq!(raw_values(&second), vec![pid], "a Flush let the server go");

    raw.send(b'S', &[]).await;
    let end = raw.recv_until(b'Z').await;
    assert_eq!(raw_tags(&end), "Z");
    assert_eq!(end[0].1, b"I");
    let got = tokio::time::timeout(Duration::from_secs(5), other_query)
        .await
        .expect("server not released after Sync")
        .unwrap();
    assert_eq!(got, "other");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_syncs_in_one_packet_are_all_answered_on_the_same_server() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "syncs");
    let sluice = start_plain_sluice(cluster, &tenant, 1);
    let mut raw = RawClient::connect(sluice.port, &tenant.user, "pw", &tenant.db, &[]).await;

    // Another client keeps asking for the one server meanwhile.
    let other = connect(&tenant.url(&sluice)).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let hammer = tokio::spawn(async move {
        let mut n = 0;
        while !*stopped.borrow() {
            let v = first_value(&other, "SELECT 'other'").await;
            assert_eq!(v, "other", "the other client got someone else's answer");
            n += 1;
        }
        n
    });

    for round in 0..30 {
        let mut packet = Vec::new();
        let mut expected = Vec::new();
        for i in 0..10 {
            let v = round * 100 + i;
            if i == 5 {
                packet.extend(raw_message(b'Q', format!("SELECT {v}\0").as_bytes()));
            } else {
                packet.extend(raw_parse_bind_execute(&format!("SELECT {v}")));
                packet.extend(raw_message(b'S', &[]));
            }
            expected.push(v.to_string());
        }
        raw.send_raw(&packet).await;
        let mut got = Vec::new();
        for _ in 0..10 {
            let messages = raw.recv_until(b'Z').await;
            assert!(
                !messages.iter().any(|(t, _)| *t == b'E'),
                "round {round}: error {:?}",
                messages
                    .iter()
                    .filter(|(t, _)| *t == b'E')
                    .map(|(_, b)| error_text(b))
                    .collect::<Vec<_>>()
            );
            got.extend(raw_values(&messages));
        }
        assert_eq!(got, expected, "round {round}");
    }
    let _ = stop.send(true);
    let n = tokio::time::timeout(Duration::from_secs(10), hammer)
        .await
        .expect("the other client starved")
        .unwrap();
    assert!(n > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_parameters_are_reported_at_login_and_kept_per_client() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "rawparams");
    let sluice = start_plain_sluice(cluster, &tenant, 1);
    let mut a = RawClient::connect(
        sluice.port,
        &tenant.user,
        "pw",
        &tenant.db,
        &[
            ("TimeZone", "Asia/Kolkata"),
            ("application_name", "raw_a"),
            ("IntervalStyle", "iso_8601"),
            ("client_encoding", "LATIN1"),
            ("DateStyle", "SQL, DMY"),
            ("standard_conforming_strings", "off"),
        ],
    )
    .await;
    let mut b = RawClient::connect(
        sluice.port,
        &tenant.user,
        "pw",
        &tenant.db,
        &[
            ("TimeZone", "America/Lima"),
            ("application_name", "raw_b"),
            ("client_encoding", "UTF8"),
        ],
    )
    .await;
    assert_eq!(a.param("TimeZone"), Some("Asia/Kolkata"), "{:?}", a.params);
    assert_eq!(a.param("application_name"), Some("raw_a"), "{:?}", a.params);
    assert_eq!(a.param("IntervalStyle"), Some("iso_8601"), "{:?}", a.params);
    assert_eq!(a.param("client_encoding"), Some("LATIN1"), "{:?}", a.params);
    assert_eq!(b.param("TimeZone"), Some("America/Lima"), "{:?}", b.params);
    assert_eq!(b.param("IntervalStyle"), Some("postgres"), "{:?}", b.params);
    assert_eq!(b.param("client_encoding"), Some("UTF8"), "{:?}", b.params);
    assert_eq!(a.param("DateStyle"), Some("SQL, DMY"), "{:?}", a.params);
    assert_eq!(
        a.param("standard_conforming_strings"),
        Some("off"),
        "{:?}",
        a.params
    );
    assert_eq!(b.param("DateStyle"), Some("ISO, MDY"), "{:?}", b.params);
    assert!(a.param("server_version").is_some(), "{:?}", a.params);
    assert!(a.param("integer_datetimes").is_some(), "{:?}", a.params);

    let query = "SELECT current_setting('TimeZone') || '|' || current_setting('application_name') \
                 || '|' || current_setting('IntervalStyle') || '|' || current_setting('client_encoding') \
                 || '|' || current_setting('DateStyle') || '|' || current_setting('standard_conforming_strings')";
    for round in 0..20 {
        let got = raw_values(&a.simple(query).await);
        assert_eq!(
            got,
            vec!["Asia/Kolkata|raw_a|iso_8601|LATIN1|SQL, DMY|off"],
            "round {round}"
        );
        let got = raw_values(&b.simple(query).await);
        assert_eq!(
            got,
            vec!["America/Lima|raw_b|postgres|UTF8|ISO, MDY|on"],
            "round {round}"
        );
        // The encodings are live: 'é' is one byte for a, two for b.
        let got = raw_values(&a.simple("SELECT length('\u{e9}')").await);
        assert_eq!(got, vec!["2"], "a sent two LATIN1 bytes, round {round}");
        let got = raw_values(&b.simple("SELECT length('\u{e9}')").await);
        assert_eq!(got, vec!["1"], "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_in_a_pipelined_sync_group_skips_to_its_sync_and_the_rest_runs() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "pipeerr");
    let sluice = start_plain_sluice(cluster, &tenant, 1);
    let mut raw = RawClient::connect(sluice.port, &tenant.user, "pw", &tenant.db, &[]).await;
    let other = connect(&tenant.url(&sluice)).await;
    for round in 0..10 {
        let mut packet = raw_parse_bind_execute("SELECT 1");
        packet.extend(raw_parse_bind_execute("SELECT 1 / 0"));
        packet.extend(raw_parse_bind_execute("SELECT 'skipped'"));
        packet.extend(raw_message(b'S', &[]));
        packet.extend(raw_parse_bind_execute("SELECT 'after'"));
        packet.extend(raw_message(b'S', &[]));
        raw.send_raw(&packet).await;
        let first = raw.recv_until(b'Z').await;
        // 1/0 fails at Bind or Execute; either way nothing after it runs.
        let tags = raw_tags(&first);
        assert!(
            tags == "12DC1EZ" || tags == "12DC12EZ",
            "round {round}: {tags}"
        );
        assert_eq!(raw_values(&first), vec!["1"]);
        assert_eq!(first.last().unwrap().1, b"I");
        let second = raw.recv_until(b'Z').await;
        assert_eq!(raw_tags(&second), "12DCZ", "round {round}");
        assert_eq!(raw_values(&second), vec!["after"]);
        assert_eq!(first_value(&other, "SELECT 'other'").await, "other");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_local_and_rolled_back_set_do_not_stick_to_the_client() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "setlocal");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    let alpha = connect(&tenant.url_with(&sluice, "application_name=alpha")).await;
    let beta = connect(&tenant.url_with(&sluice, "application_name=beta")).await;
    let app = "SELECT current_setting('application_name')";

    alpha
        .batch_execute("BEGIN; SET LOCAL application_name = 'local_only'")
        .await
        .unwrap();
    assert_eq!(first_value(&alpha, app).await, "local_only");
    alpha.batch_execute("COMMIT").await.unwrap();
    assert_eq!(first_value(&beta, app).await, "beta");
    assert_eq!(
        first_value(&alpha, app).await,
        "alpha",
        "SET LOCAL outlived its transaction"
    );

    alpha
        .batch_execute("BEGIN; SET application_name = 'rolled_back'; ROLLBACK")
        .await
        .unwrap();
    assert_eq!(first_value(&beta, app).await, "beta");
    assert_eq!(
        first_value(&alpha, app).await,
        "alpha",
        "a rolled-back SET stuck"
    );

    alpha
        .batch_execute("BEGIN; SET application_name = 'committed'; COMMIT")
        .await
        .unwrap();
    assert_eq!(first_value(&beta, app).await, "beta");
    assert_eq!(first_value(&alpha, app).await, "committed");
    assert_eq!(first_value(&beta, app).await, "beta");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_pipelined_queries_flow_without_deadlock() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "flood");
    let sluice = start_sluice(cluster, &tenant, "transaction", 2, "");
    let url = tenant.url(&sluice);
    let a = connect(&url).await;
    let b = connect(&url).await;
    let flood = |client: tokio_postgres::Client, tag: &'static str| async move {
        let queries = (0..3000i32).map(|i| {
            let client = &client;
            async move {
                let row = client
                    .query_typed_one(
                        "SELECT $1::int4, repeat($2::text, 1000)",
                        &[(&i, Type::INT4), (&tag, Type::TEXT)],
                    )
                    .await
                    .unwrap_or_else(|e| panic!("{tag} {i}: {}", describe(&e)));
                assert_eq!(row.get::<_, i32>(0), i);
                assert_eq!(row.get::<_, String>(1).len(), 1000 * tag.len());
            }
        });
        join_all(queries).await;
    };
    tokio::time::timeout(
        Duration::from_secs(40),
        futures_util::future::join(flood(a, "a"), flood(b, "bb")),
    )
    .await
    .expect("pipelined flood did not finish within 40 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_in_with_bad_data_fails_cleanly_and_the_pool_goes_on() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "badcopy");
    tenant.psql(
        cluster,
        &format!(
            "CREATE TABLE c (id int); ALTER TABLE c OWNER TO {};",
            tenant.user
        ),
    );
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "query_wait_timeout = 5");
    let url = tenant.url(&sluice);
    let mut client = connect(&url).await;
    let other = connect(&url).await;
    for round in 0..3 {
        // tokio-postgres (extended protocol): a bad line early, lots after.
        {
            let tx = client.transaction().await.unwrap();
            let sink = tx.copy_in("COPY c FROM STDIN").await.unwrap();
            pin_mut!(sink);
            let mut failed = false;
            let mut chunks = vec![b"1\nnot a number\n".to_vec()];
            for _ in 0..50 {
                chunks.push(b"2\n".repeat(10_000));
            }
            for chunk in chunks {
                if sink.send(Cursor::new(chunk)).await.is_err() {
                    failed = true;
                    break;
                }
            }
            if !failed {
                let r = sink.finish().await;
                assert!(r.is_err(), "round {round}: bad COPY data accepted");
            }
            let _ = tx.rollback().await;
        }
        assert_eq!(
            first_value(&other, "SELECT count(*) FROM c").await,
            "0",
            "round {round}"
        );
        assert_eq!(first_value(&client, "SELECT 'usable'").await, "usable");

        // psql \copy (simple protocol): the server answers ReadyForQuery
        // while psql may still be sending data.
        let mut child = psql_through(&sluice, &tenant)
            .args(["-c", "\\copy c FROM STDIN"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            let mut data = b"1\nnot a number\n".to_vec();
            data.extend(b"3\n".repeat(200_000));
            let _ = stdin.write_all(&data);
        });
        let out = child.wait_with_output().unwrap();
        let _ = writer.join();
        assert!(!out.status.success(), "psql accepted bad COPY data");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("invalid input syntax"),
            "{}",
            show(&out)
        );
        assert_eq!(
            first_value(&other, "SELECT count(*) FROM c").await,
            "0",
            "round {round}"
        );
        assert_eq!(
            first_value(&other, "SELECT txid_current_if_assigned() IS NULL").await,
            "t"
        );
    }
}

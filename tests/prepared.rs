//! Named prepared statements in transaction mode: each client's names are
//! mapped to server-side statements prepared lazily on whichever server the
//! transaction lands on (tokio-postgres prepares every query(); pgbench
//! -M prepared), bounded per server by max_prepared_statements.

mod common;

use common::*;
use sluice_testkit::PgCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_postgres_query_with_parameters_works_across_servers() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "prep");
    let sluice = start_sluice(cluster, &tenant, "transaction", 2, "");
    let url = tenant.url(&sluice);
    let mut tasks = Vec::new();
    for c in 0..8i32 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let client = connect(&url).await;
            // The same statement name (s0, s1…) means a different query in
            // every client.
            let sql = format!("SELECT $1::int4 + {c}");
            let stmt = client.prepare(&sql).await.unwrap();
            for i in 0..30i32 {
                let row = client.query_one(&stmt, &[&i]).await.unwrap();
                assert_eq!(row.get::<_, i32>(0), i + c);
                let row = client
                    .query_one("SELECT $1::text || 'x'", &[&format!("{c}-{i}")])
                    .await
                    .unwrap();
                assert_eq!(row.get::<_, String>(0), format!("{c}-{i}x"));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let admin = superuser(cluster).await;
    assert!(server_count(&admin, &tenant.user, &tenant.db).await <= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_prepared_runs_without_failures_on_a_small_pool() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "pgbprep");
    let init = sluice_testkit::pgbench(
        &[
            "-i",
            "-q",
            "-s",
            "1",
            "-h",
            "127.0.0.1",
            "-p",
            &cluster.port.to_string(),
            "-U",
            "postgres",
            &tenant.db,
        ],
        &[],
    );
    assert!(init.status.success(), "{}", show(&init));
    tenant.psql(
        cluster,
        &format!(
            "GRANT ALL ON ALL TABLES IN SCHEMA public TO {}",
            tenant.user
        ),
    );
    let sluice = start_sluice(cluster, &tenant, "transaction", 2, "");
    // pgbench prepares each statement synchronously the first time a client
    // runs it; with several clients per thread, one client's prepare would
    // block the thread while another holds a server mid-transaction. So the
    // transaction workload gets a thread per client.
    for (workload, clients, threads) in [(&["-S"][..], "10", "2"), (&[][..], "4", "4")] {
        let mut args = vec![
            "-n",
            "-M",
            "prepared",
            "-c",
            clients,
            "-j",
            threads,
            "-T",
            "3",
            "-h",
            "127.0.0.1",
        ];
        let port = sluice.port.to_string();
        args.extend_from_slice(&["-p", &port, "-U", &tenant.user]);
        args.extend_from_slice(workload);
        args.push(&tenant.db);
        let out = sluice_testkit::pgbench(&args, &[("PGPASSWORD", &tenant.password)]);
        let text = show(&out);
        assert!(out.status.success(), "{text}");
        assert!(
            text.contains("number of failed transactions: 0 "),
            "{text}\n{}",
            log_tail(&sluice, 20)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deallocate_all_forgets_the_clients_statements_like_postgresql() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "dealloc");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    let client = connect(&tenant.url(&sluice)).await;
    let stmt = client.prepare("SELECT 42").await.unwrap();
    assert_eq!(
        client.query_one(&stmt, &[]).await.unwrap().get::<_, i32>(0),
        42
    );
    client.batch_execute("DEALLOCATE ALL").await.unwrap();
    let err = client.query_one(&stmt, &[]).await.unwrap_err();
    assert_eq!(
        err.code().map(|c| c.code()),
        Some("26000"),
        "{}",
        describe(&err)
    );
    // New statements work again afterwards.
    let again = client.prepare("SELECT 43").await.unwrap();
    assert_eq!(
        client
            .query_one(&again, &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        43
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_beyond_max_prepared_statements_are_evicted_and_reprepared() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "evict");
    let sluice = start_sluice(
        cluster,
        &tenant,
        "transaction",
        1,
        "max_prepared_statements = 2",
    );
    let client = connect(&tenant.url(&sluice)).await;
    let mut stmts = Vec::new();
    for i in 0..5 {
        stmts.push(client.prepare(&format!("SELECT {i} AS n")).await.unwrap());
    }
    for round in 0..3 {
        for (i, s) in stmts.iter().enumerate() {
            let n: i32 = client.query_one(s, &[]).await.unwrap().get(0);
            assert_eq!(n, i as i32, "round {round}");
        }
    }
    let admin = superuser(cluster).await;
    let servers: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = $1",
            &[&tenant.user],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(servers, 1, "one server, re-preparing as it goes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_of_prepared_queries_with_an_error_in_the_middle_answers_in_order() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "pipeprep");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    let client = connect(&tenant.url(&sluice)).await;
    let ok = client.prepare("SELECT $1::int4 * 2").await.unwrap();
    let bad = client.prepare("SELECT 1 / $1::int4").await.unwrap();
    let (a, b, c) = tokio::join!(
        client.query_one(&ok, &[&21i32]),
        client.query_one(&bad, &[&0i32]),
        client.query_one(&ok, &[&5i32]),
    );
    assert_eq!(a.unwrap().get::<_, i32>(0), 42);
    assert_eq!(b.unwrap_err().code().map(|c| c.code()), Some("22012"));
    assert_eq!(c.unwrap().get::<_, i32>(0), 10);
}

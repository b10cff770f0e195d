//! The admin console's commands against a real Sluice and PostgreSQL:
//! PAUSE/RESUME with clients waiting, SUSPEND, RELOAD (also under pgbench
//! load, and rejected when invalid), KILL, KILL_CLIENT, DISABLE/ENABLE,
//! RECONNECT/WAIT_CLOSE, SET, SHUTDOWN, and SIGUSR1/SIGUSR2.

mod common;

use std::time::Duration;

use common::*;
use sluice_testkit::{pgbench, PgCluster, SluiceProcess};
use tokio_postgres::Client;

fn start_with_console(
    cluster: &PgCluster,
    tenant: &Tenant,
    pool: usize,
    extra: &str,
) -> SluiceProcess {
    let ini = ini(
        cluster,
        "transaction",
        pool,
        &format!("admin_users = {}\n{extra}", tenant.user),
    );
    SluiceProcess::start(sluice_bin(), &ini, &tenant.userlist())
}

async fn console(sluice: &SluiceProcess, tenant: &Tenant) -> Client {
    connect(&sluice.url(&tenant.user, &tenant.password, "pgbouncer")).await
}

/// `column` of the tenant's row in SHOW `what` (first column = key).
async fn value(c: &Client, what: &str, key: &str, column: &str) -> Option<String> {
    let msgs = c.simple_query(&format!("SHOW {what}")).await.unwrap();
    let mut cols = Vec::new();
    for m in &msgs {
        if let tokio_postgres::SimpleQueryMessage::RowDescription(d) = m {
            cols = d.iter().map(|c| c.name().to_string()).collect();
        }
    }
    let i = cols.iter().position(|n| n == column)?;
    rows(&msgs)
        .into_iter()
        .find(|r| r[0].as_deref() == Some(key))
        .and_then(|r| r[i].clone())
}

/// Runs a console command and returns its error text, if any.
async fn run(c: &Client, cmd: &str) -> Result<(), String> {
    c.simple_query(cmd)
        .await
        .map(|_| ())
        .map_err(|e| describe(&e))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_waits_for_running_transactions_and_holds_new_ones_until_resume() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "pause");
    let sluice = start_with_console(cluster, &tenant, 2, "");
    let busy = connect(&tenant.url(&sluice)).await;
    busy.batch_execute("BEGIN").await.unwrap();
    first_value(&busy, "SELECT 1").await;

    let c = console(&sluice, &tenant).await;
    let db = tenant.db.clone();
    let pause =
        tokio::spawn(async move { c.simple_query(&format!("PAUSE {db}")).await.map(|_| c) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !pause.is_finished(),
        "PAUSE returned while a transaction ran"
    );
    busy.batch_execute("COMMIT").await.unwrap();
    let c = tokio::time::timeout(Duration::from_secs(5), pause)
        .await
        .expect("PAUSE returns once the transaction is over")
        .unwrap()
        .unwrap();

    // New transactions wait, visibly, until RESUME.
    let waiting = {
        let url = tenant.url(&sluice);
        tokio::spawn(async move {
            let w = connect(&url).await;
            first_value(&w, "SELECT 'went through'").await
        })
    };
    let seen = wait_for(Duration::from_secs(5), || async {
        value(&c, "POOLS", &tenant.db, "cl_waiting")
            .await
            .as_deref()
            == Some("1")
    })
    .await;
    assert!(seen, "a waiting client in SHOW POOLS while paused");
    assert_eq!(
        value(&c, "DATABASES", &tenant.db, "paused")
            .await
            .as_deref(),
        Some("1")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "a query ran on a paused database");
    run(&c, &format!("RESUME {}", tenant.db)).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the waiting client runs after RESUME")
        .unwrap();
    assert_eq!(got, "went through");
    assert_eq!(
        run(&c, &format!("RESUME {}", tenant.db)).await,
        Err(format!("ERROR 08P01: database {} is not paused", tenant.db))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_pause_suspend_and_resume_report_their_state() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "suspend");
    let sluice = start_with_console(cluster, &tenant, 2, "");
    let c = console(&sluice, &tenant).await;
    run(&c, "PAUSE").await.unwrap();
    assert_eq!(
        value(&c, "STATE", "paused", "value").await.as_deref(),
        Some("yes")
    );
    assert_eq!(
        run(&c, "PAUSE").await,
        Err("ERROR 08P01: already suspended/paused".into())
    );
    run(&c, "RESUME").await.unwrap();
    assert_eq!(
        run(&c, "RESUME").await,
        Err("ERROR 08P01: pooler is not paused/suspended".into())
    );
    run(&c, "SUSPEND").await.unwrap();
    assert_eq!(
        value(&c, "STATE", "suspended", "value").await.as_deref(),
        Some("yes")
    );
    run(&c, "RESUME").await.unwrap();
    assert_eq!(
        value(&c, "STATE", "active", "value").await.as_deref(),
        Some("yes")
    );
    let app = connect(&tenant.url(&sluice)).await;
    assert_eq!(first_value(&app, "SELECT 7").await, "7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigusr1_pauses_and_sigusr2_resumes() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "usr");
    let sluice = start_with_console(cluster, &tenant, 2, "");
    let c = console(&sluice, &tenant).await;
    sluice.signal(libc::SIGUSR1);
    let paused = wait_for(Duration::from_secs(3), || async {
        value(&c, "STATE", "paused", "value").await.as_deref() == Some("yes")
    })
    .await;
    assert!(paused, "SIGUSR1 pauses:\n{}", log_tail(&sluice, 5));
    let url = tenant.url(&sluice);
    let q = tokio::spawn(async move {
        let app = connect(&url).await;
        first_value(&app, "SELECT 1").await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!q.is_finished(), "a query ran while paused by SIGUSR1");
    sluice.signal(libc::SIGUSR2);
    let got = tokio::time::timeout(Duration::from_secs(5), q).await;
    assert_eq!(got.expect("SIGUSR2 resumes").unwrap(), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_client_closes_just_that_client_with_pgbouncers_reason() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "killcl");
    let sluice = start_with_console(cluster, &tenant, 2, "");
    let victim = connect(&tenant.url_with(&sluice, "application_name=victim")).await;
    let other = connect(&tenant.url(&sluice)).await;
    first_value(&victim, "SELECT 1").await;
    let c = console(&sluice, &tenant).await;
    let msgs = c.simple_query("SHOW CLIENTS").await.unwrap();
    let id = rows(&msgs)
        .into_iter()
        .find(|r| r[18].as_deref() == Some("victim"))
        .and_then(|r| r[20].clone())
        .expect("the victim in SHOW CLIENTS");
    run(&c, &format!("KILL_CLIENT {id}")).await.unwrap();
    let e = retry(Duration::from_secs(3), || try_value(&victim, "SELECT 2"))
        .await
        .expect_err("the killed client is gone");
    let text = describe(&e);
    assert!(
        text.contains("admin forced disconnect") || victim.is_closed(),
        "{text}"
    );
    assert_eq!(first_value(&other, "SELECT 3").await, "3");
    assert_eq!(
        run(&c, "KILL_CLIENT nonsense").await,
        Err("ERROR 08P01: invalid client pointer supplied".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_drops_a_databases_clients_and_keeps_it_paused_until_resume() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "killdb");
    let sluice = start_with_console(cluster, &tenant, 2, "");
    let app = connect(&tenant.url(&sluice)).await;
    app.batch_execute("BEGIN").await.unwrap();
    first_value(&app, "SELECT 1").await;
    let admin = superuser(cluster).await;
    let c = console(&sluice, &tenant).await;
    run(&c, &format!("KILL {}", tenant.db)).await.unwrap();
    let e = retry(Duration::from_secs(3), || try_value(&app, "SELECT 2"))
        .await
        .expect_err("killed");
    assert!(describe(&e).contains("database removed") || app.is_closed());
    let gone = wait_for(Duration::from_secs(5), || async {
        server_count(&admin, &tenant.user, &tenant.db).await == 0
    })
    .await;
    assert!(gone, "servers of a killed database are closed");
    assert_eq!(
        value(&c, "DATABASES", &tenant.db, "paused")
            .await
            .as_deref(),
        Some("1")
    );
    run(&c, &format!("RESUME {}", tenant.db)).await.unwrap();
    let again = connect(&tenant.url(&sluice)).await;
    assert_eq!(first_value(&again, "SELECT 4").await, "4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_refuses_new_logins_until_enable() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "disable");
    let sluice = start_with_console(cluster, &tenant, 2, "");
    let inside = connect(&tenant.url(&sluice)).await;
    let c = console(&sluice, &tenant).await;
    run(&c, &format!("DISABLE {}", tenant.db)).await.unwrap();
    let e = sluice_testkit::try_connect(&tenant.url(&sluice))
        .await
        .map(|_| ())
        .expect_err("login to a disabled database");
    assert_eq!(
        describe(&e),
        format!("FATAL 08P01: database \"{}\" is disabled", tenant.db)
    );
    // Clients already in keep working.
    assert_eq!(first_value(&inside, "SELECT 1").await, "1");
    run(&c, &format!("ENABLE {}", tenant.db)).await.unwrap();
    let again = connect(&tenant.url(&sluice)).await;
    assert_eq!(first_value(&again, "SELECT 2").await, "2");
    assert_eq!(
        run(&c, "ENABLE pgbouncer").await,
        Err("ERROR 08P01: cannot enable admin db: pgbouncer".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_replaces_servers_after_their_transactions_and_wait_close_waits() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "reconn");
    let sluice = start_with_console(cluster, &tenant, 2, "");
    let app = connect(&tenant.url(&sluice)).await;
    let before = first_value(&app, "SELECT pg_backend_pid()").await;
    app.batch_execute("BEGIN").await.unwrap();
    first_value(&app, "SELECT 1").await;
    let c = console(&sluice, &tenant).await;
    run(&c, "RECONNECT").await.unwrap();
    // The lent server finishes its transaction first.
    assert_eq!(first_value(&app, "SELECT pg_backend_pid()").await, before);
    let c2 = console(&sluice, &tenant).await;
    let wait = tokio::spawn(async move { run(&c2, "WAIT_CLOSE").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !wait.is_finished(),
        "WAIT_CLOSE returned with an old server open"
    );
    app.batch_execute("COMMIT").await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .expect("WAIT_CLOSE returns when the old server is closed")
        .unwrap()
        .unwrap();
    let after = first_value(&app, "SELECT pg_backend_pid()").await;
    assert_ne!(after, before, "a new server after RECONNECT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_changes_a_setting_at_runtime_and_rejects_bad_ones() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "set");
    let sluice = start_with_console(cluster, &tenant, 2, "");
    let c = console(&sluice, &tenant).await;
    let msgs = c.simple_query("SET default_pool_size = 5").await.unwrap();
    assert!(matches!(
        msgs.last(),
        Some(tokio_postgres::SimpleQueryMessage::CommandComplete(_))
    ));
    assert_eq!(
        value(&c, "CONFIG", "default_pool_size", "value")
            .await
            .as_deref(),
        Some("5")
    );
    assert_eq!(
        run(&c, "SET default_pool_size = lots").await,
        Err("ERROR 08P01: SET failed".into())
    );
    assert_eq!(
        run(&c, "SET no_such_key = 1").await,
        Err("ERROR 08P01: SET failed".into())
    );
    assert_eq!(
        value(&c, "CONFIG", "default_pool_size", "value")
            .await
            .as_deref(),
        Some("5")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_the_new_ini_and_an_invalid_one_keeps_the_old() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "reload");
    let sluice = start_with_console(cluster, &tenant, 2, "");
    let app = connect(&tenant.url(&sluice)).await;
    let c = console(&sluice, &tenant).await;
    let ini = std::fs::read_to_string(&sluice.ini_path).unwrap();
    std::fs::write(
        &sluice.ini_path,
        ini.replace("default_pool_size = 2", "default_pool_size = 4"),
    )
    .unwrap();
    run(&c, "RELOAD").await.unwrap();
    assert_eq!(
        value(&c, "DATABASES", &tenant.db, "pool_size")
            .await
            .as_deref(),
        Some("4")
    );
    std::fs::write(
        &sluice.ini_path,
        format!("{ini}\n[pgbouncer]\npool_mode = sometimes\n"),
    )
    .unwrap();
    assert_eq!(
        run(&c, "RELOAD").await,
        Err("ERROR F0000: RELOAD failed, see logs for additional details".into())
    );
    assert!(
        sluice.log().contains("sometimes"),
        "{}",
        log_tail(&sluice, 5)
    );
    assert_eq!(
        value(&c, "CONFIG", "default_pool_size", "value")
            .await
            .as_deref(),
        Some("4")
    );
    assert_eq!(first_value(&app, "SELECT 1").await, "1", "clients stay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_changing_pool_size_under_pgbench_load_fails_no_transaction() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "reloadload");
    let port = cluster.port.to_string();
    let env = [
        ("PGPASSWORD", tenant.password.as_str()),
        ("PGSSLMODE", "disable"),
    ];
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
        &env,
    );
    assert!(init.status.success(), "{}", show(&init));
    let sluice = start_with_console(cluster, &tenant, 2, "");
    let sluice_port = sluice.port.to_string();
    let (user, db, pw) = (
        tenant.user.clone(),
        tenant.db.clone(),
        tenant.password.clone(),
    );
    let bench = tokio::task::spawn_blocking(move || {
        pgbench(
            &[
                "-n",
                "-c",
                "10",
                "-j",
                "2",
                "-T",
                "5",
                "-h",
                "127.0.0.1",
                "-p",
                &sluice_port,
                "-U",
                &user,
                &db,
            ],
            &[("PGPASSWORD", pw.as_str()), ("PGSSLMODE", "disable")],
        )
    });
    let c = console(&sluice, &tenant).await;
    let admin = superuser(cluster).await;
    let ini = std::fs::read_to_string(&sluice.ini_path).unwrap();
    let mut before_shrink = 0;
    let mut after_shrink = 0;
    for (size, pause_ms) in [(5, 1200), (1, 1500), (3, 800)] {
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        if size == 1 {
            before_shrink = server_count(&admin, &tenant.user, &tenant.db).await;
        }
        std::fs::write(
            &sluice.ini_path,
            ini.replace(
                "default_pool_size = 2",
                &format!("default_pool_size = {size}"),
            ),
        )
        .unwrap();
        run(&c, "RELOAD").await.unwrap();
        if size == 1 {
            let shrunk = wait_for(Duration::from_secs(1), || async {
                server_count(&admin, &tenant.user, &tenant.db).await == 1
            })
            .await;
            after_shrink = server_count(&admin, &tenant.user, &tenant.db).await;
            assert!(shrunk, "{after_shrink} servers after shrinking to 1");
        }
    }
    let out = bench.await.unwrap();
    let text = show(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("number of failed transactions: 0"),
        "pgbench reported failures:\n{text}"
    );
    // 10 clients: the pool grew to the new size of 5, and servers above
    // the next size of 1 were closed as they came back.
    assert!(
        before_shrink > 2,
        "{before_shrink} servers after growing to 5"
    );
    assert!(
        after_shrink <= 2,
        "{after_shrink} servers after shrinking to 1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_wait_for_clients_exits_once_the_last_client_leaves() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "shutdown");
    let mut sluice = start_with_console(cluster, &tenant, 2, "");
    let app = connect(&tenant.url(&sluice)).await;
    first_value(&app, "SELECT 1").await;
    let c = console(&sluice, &tenant).await;
    run(&c, "SHUTDOWN WAIT_FOR_CLIENTS").await.unwrap();
    drop(c);
    assert!(
        sluice.wait_exit(Duration::from_millis(500)).is_none(),
        "exited with a client left"
    );
    assert_eq!(
        first_value(&app, "SELECT 2").await,
        "2",
        "the client keeps working"
    );
    drop(app);
    let status = sluice.wait_exit(Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| s.success()),
        "{:?}\n{}",
        status,
        log_tail(&sluice, 10)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_without_argument_exits_at_once() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "shutnow");
    let mut sluice = start_with_console(cluster, &tenant, 2, "");
    let _app = connect(&tenant.url(&sluice)).await;
    let c = console(&sluice, &tenant).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), c.simple_query("SHUTDOWN")).await;
    let status = sluice.wait_exit(Duration::from_secs(5));
    assert!(status.is_some(), "still running after SHUTDOWN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_moving_a_database_drains_its_old_servers_after_their_transactions() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "moved");
    let new_db = format!("{}_new", tenant.db);
    cluster.psql(
        "postgres",
        &format!("CREATE DATABASE {new_db} OWNER {};", tenant.user),
    );
    let entry = |db: &str| {
        format!(
            "[databases]\napp = host=127.0.0.1 port={} dbname={db}\n",
            cluster.port
        )
    };
    let base = ini(
        cluster,
        "transaction",
        2,
        &format!("admin_users = {}", tenant.user),
    );
    let sluice = SluiceProcess::start(
        sluice_bin(),
        &base.replacen("[databases]\n", &entry(&tenant.db), 1),
        &tenant.userlist(),
    );
    let app = connect(&sluice.url(&tenant.user, &tenant.password, "app")).await;
    app.batch_execute("BEGIN").await.unwrap();
    assert_eq!(
        first_value(&app, "SELECT current_database()").await,
        tenant.db
    );

    let ini_now = std::fs::read_to_string(&sluice.ini_path).unwrap();
    std::fs::write(
        &sluice.ini_path,
        ini_now.replace(
            &format!("dbname={}\n", tenant.db),
            &format!("dbname={new_db}\n"),
        ),
    )
    .unwrap();
    let c = console(&sluice, &tenant).await;
    run(&c, "RELOAD").await.unwrap();
    // The running transaction finishes where it started...
    assert_eq!(
        first_value(&app, "SELECT current_database()").await,
        tenant.db
    );
    app.batch_execute("COMMIT").await.unwrap();
    // ...and the next one runs on the new database, on a new server.
    assert_eq!(first_value(&app, "SELECT current_database()").await, new_db);
    let admin = superuser(cluster).await;
    let drained = wait_for(Duration::from_secs(5), || async {
        server_count(&admin, &tenant.user, &tenant.db).await == 0
    })
    .await;
    assert!(
        drained,
        "the old database's server was closed when it came back"
    );
}

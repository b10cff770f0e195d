//! The pool against a real PostgreSQL: limits, the FIFO queue, timeouts,
//! and that abandoned waits and dropped guards never leak a slot.

use std::sync::Arc;
use std::time::Duration;

use sluice_pool::login::LoginParams;
use sluice_pool::{Limit, Pool, PoolError, PoolKey, PoolSettings, ServerAddr, ServerSecret};
use sluice_testkit::PgCluster;

fn settings(cluster: &PgCluster, pool_size: usize) -> PoolSettings {
    PoolSettings {
        login: LoginParams {
            addr: ServerAddr::Tcp {
                host: cluster.host.clone(),
                port: cluster.port,
            },
            user: "sluice_user".into(),
            database: "sluice_db".into(),
            secret: Some(ServerSecret::Plain("sluice_pw".into())),
            startup: vec![],
            max_packet_size: 1 << 30,
            tls: sluice_tls::ServerTls::disabled(),
        },
        pool_size,
        min_pool_size: 0,
        reserve_pool_size: 0,
        reserve_pool_timeout: Duration::from_secs(5),
        server_lifetime: Duration::from_secs(3600),
        server_idle_timeout: Duration::from_secs(600),
        server_connect_timeout: Duration::from_secs(10),
        server_login_retry: Duration::from_secs(1),
        server_check_delay: Duration::from_secs(30),
        server_check_query: String::new(),
        connect_query: None,
        log_connections: false,
        log_disconnections: false,
    }
}

fn pool(s: PoolSettings) -> Arc<Pool> {
    Pool::new(
        PoolKey {
            database: "sluice_db".into(),
            user: "sluice_user".into(),
        },
        s,
        Arc::new(Limit::new(0)),
        Arc::new(Limit::new(0)),
    )
}

#[tokio::test]
async fn released_servers_are_reused_and_the_size_is_never_exceeded() {
    let c = PgCluster::shared();
    let p = pool(settings(c, 2));
    let a = p.acquire(Duration::from_secs(5)).await.unwrap();
    let b = p.acquire(Duration::from_secs(5)).await.unwrap();
    let (a_id, b_id) = (a.id, b.id);
    assert_ne!(a_id, b_id);
    assert_eq!(p.counts(), (2, 0, 0));
    // A third waits until one comes back, and gets that very server.
    let p2 = p.clone();
    let waiter = tokio::spawn(async move {
        p2.acquire(Duration::from_secs(5)).await.map(|c| {
            let id = c.id;
            c.release();
            id
        })
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(p.counts().2, 1, "third client should be queued");
    a.release();
    assert_eq!(waiter.await.unwrap().unwrap(), a_id);
    b.release();
    assert_eq!(p.counts(), (2, 2, 0));
}

#[tokio::test]
async fn waiting_longer_than_the_timeout_fails_and_frees_the_place() {
    let c = PgCluster::shared();
    let p = pool(settings(c, 1));
    let held = p.acquire(Duration::from_secs(5)).await.unwrap();
    let r = p.acquire(Duration::from_millis(200)).await;
    assert!(matches!(r, Err(PoolError::WaitTimeout)), "{:?}", r.err());
    assert_eq!(p.counts(), (1, 0, 0));
    held.release();
    assert_eq!(p.counts(), (1, 1, 0));
}

#[tokio::test]
async fn an_abandoned_wait_hands_the_server_on_instead_of_losing_it() {
    let c = PgCluster::shared();
    let p = pool(settings(c, 1));
    let held = p.acquire(Duration::from_secs(5)).await.unwrap();
    let p2 = p.clone();
    let abandoned = tokio::spawn(async move { p2.acquire(Duration::ZERO).await.map(|c| c.id) });
    tokio::time::sleep(Duration::from_millis(50)).await;
    abandoned.abort();
    let _ = abandoned.await;
    held.release();
    let again = p.acquire(Duration::from_millis(500)).await.unwrap();
    assert_eq!(p.counts().0, 1);
    // Dropping a lent server closes it; its slot is freed once the backend
    // has gone (Terminate, then EOF from PostgreSQL), not before.
    drop(again);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while p.counts() != (0, 0, 0) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(p.counts(), (0, 0, 0));
    p.acquire(Duration::from_millis(500))
        .await
        .unwrap()
        .release();
}

#[tokio::test]
async fn a_failed_login_frees_its_slot_and_reports_the_server_error() {
    let c = PgCluster::shared();
    let mut s = settings(c, 1);
    s.login.secret = Some(ServerSecret::Plain("wrong".into()));
    let p = pool(s);
    match p.acquire(Duration::from_secs(5)).await {
        Err(PoolError::Refused { code, .. }) => assert_eq!(code, "28P01"),
        other => panic!("expected a refused login, got {:?}", other.err()),
    }
    assert_eq!(p.counts(), (0, 0, 0));
    assert!(p.last_login_error().is_some());
}

#[tokio::test]
async fn a_server_killed_while_idle_is_not_lent_again() {
    let c = PgCluster::shared();
    let p = pool(settings(c, 1));
    let conn = p.acquire(Duration::from_secs(5)).await.unwrap();
    let pid = conn.backend_pid;
    conn.release();
    c.psql("postgres", &format!("SELECT pg_terminate_backend({pid})"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut conn = p.acquire(Duration::from_secs(5)).await.unwrap();
    assert_ne!(conn.backend_pid, pid);
    conn.run_silent("SELECT 1").await.unwrap();
    conn.release();
}

#[tokio::test]
async fn a_database_limit_caps_servers_across_pools() {
    let c = PgCluster::shared();
    let db_limit = Arc::new(Limit::new(1));
    let mk = |user: &str| {
        let mut s = settings(c, 5);
        s.login.user = user.into();
        s.login.secret = Some(ServerSecret::Plain(
            if user == "sluice_user" {
                "sluice_pw"
            } else {
                "scram_pw"
            }
            .into(),
        ));
        Pool::new(
            PoolKey {
                database: "sluice_db".into(),
                user: user.into(),
            },
            s,
            db_limit.clone(),
            Arc::new(Limit::new(0)),
        )
    };
    let p1 = mk("sluice_user");
    let p2 = mk("scram_user");
    let held = p1.acquire(Duration::from_secs(5)).await.unwrap();
    assert!(matches!(
        p2.acquire(Duration::from_millis(300)).await,
        Err(PoolError::WaitTimeout)
    ));
    held.close();
    let other = p2.acquire(Duration::from_secs(2)).await.unwrap();
    assert_eq!(db_limit.used(), 1);
    other.release();
}

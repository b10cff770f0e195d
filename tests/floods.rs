//! Floods and slow peers (issue #8): many clients at once on a small pool,
//! a burst beyond max_client_conn, a slowloris that trickles its startup
//! packet, a client that reads its results slowly, RELOAD shrinking and
//! growing the pool under load. The full size (10,000 clients on a pool of
//! 20, then a burst beyond max_client_conn) runs in the soak
//! (`scripts/soak`); here it is trimmed to what a 2-core CI machine does in
//! seconds.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sluice_testkit::PgCluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_clients_on_a_pool_of_five_are_all_served_and_a_burst_beyond_max_client_conn_is_refused(
) {
    let limit = sluice_testkit::raise_nofile();
    let clients: usize = if limit >= 4096 { 1000 } else { 300 };
    let max_client_conn = clients + 10;
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "flood");
    let sluice = start_sluice(
        cluster,
        &tenant,
        "transaction",
        5,
        &format!("max_client_conn = {max_client_conn}\nquery_wait_timeout = 60"),
    );
    let url = tenant.url(&sluice);
    let mut held = Vec::new();
    for chunk in 0..clients / 100 {
        let logins: Vec<_> = (0..100)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { connect(&url).await })
            })
            .collect();
        for l in logins {
            held.push(l.await.unwrap());
        }
        assert_eq!(held.len(), (chunk + 1) * 100);
    }
    // All of them run a transaction at once, five at a time on the server.
    let work: Vec<_> = held
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            tokio::spawn(async move {
                let v = first_value(&c, &format!("SELECT {i} + 1")).await;
                assert_eq!(v, (i + 1).to_string());
                c
            })
        })
        .collect();
    let mut held = Vec::new();
    for w in work {
        held.push(w.await.unwrap());
    }
    // Ten more fit; the eleventh and on get PgBouncer's error.
    let mut extra = Vec::new();
    for _ in 0..10 {
        extra.push(connect(&url).await);
    }
    for _ in 0..5 {
        let e = sluice_testkit::try_connect(&url)
            .await
            .err()
            .map(|e| describe(&e))
            .unwrap_or_default();
        assert!(
            e.contains("no more connections allowed (max_client_conn)"),
            "{e:?}"
        );
    }
    // Those already in carry on.
    assert_eq!(
        first_value(&held[0], "SELECT 'still here'").await,
        "still here"
    );
    assert_eq!(first_value(&extra[9], "SELECT 'me too'").await, "me too");
    let servers = count_servers(cluster, &tenant.user).await;
    assert!(servers <= 5, "{servers} server connections for a pool of 5");
}

async fn count_servers(cluster: &PgCluster, user: &str) -> usize {
    let admin = connect(&cluster.superuser_url("postgres")).await;
    first_value(
        &admin,
        &format!("SELECT count(*) FROM pg_stat_activity WHERE usename = '{user}'"),
    )
    .await
    .parse()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_trickling_its_startup_packet_is_dropped_at_client_login_timeout() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "slowloris");
    let sluice = start_sluice(
        cluster,
        &tenant,
        "transaction",
        1,
        "client_login_timeout = 1",
    );
    let mut s = TcpStream::connect(("127.0.0.1", sluice.port))
        .await
        .unwrap();
    // A 64-byte startup packet, one byte every 200 ms: never finished in time.
    let started = Instant::now();
    let mut closed_after = None;
    let mut packet = 64u32.to_be_bytes().to_vec();
    packet.extend_from_slice(&196608u32.to_be_bytes());
    packet.resize(64, b'a');
    for b in packet {
        if s.write_all(&[b]).await.is_err() {
            closed_after = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut buf = [0u8; 512];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await {
            // An error message or EOF: the pooler gave up on us.
            assert!(n == 0 || buf[0] == b'E', "{:?}", &buf[..n]);
            closed_after = Some(started.elapsed());
            break;
        }
    }
    let after = closed_after.expect("a 13-second trickle was never cut off");
    assert!(
        after < Duration::from_secs(5),
        "cut off only after {after:?}"
    );
    let c = connect(&tenant.url(&sluice)).await;
    assert_eq!(first_value(&c, "SELECT 1").await, "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reading_its_results_slowly_does_not_stall_the_others() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "slowreader");
    let sluice = start_sluice(cluster, &tenant, "transaction", 2, "");
    // A raw client asks for ~50 MB and reads none of it for a while.
    let mut slow = TcpStream::connect(("127.0.0.1", sluice.port))
        .await
        .unwrap();
    raw_login(&mut slow, &tenant).await;
    let mut q = bytes::BytesMut::new();
    sluice_protocol::builders::put_query(
        &mut q,
        "SELECT repeat('x', 1000000) FROM generate_series(1, 50)",
    );
    slow.write_all(&q).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Meanwhile others get through on the other server, quickly.
    let url = tenant.url(&sluice);
    let started = Instant::now();
    for i in 0..20 {
        let c = connect(&url).await;
        assert_eq!(first_value(&c, &format!("SELECT {i}")).await, i.to_string());
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    // Sluice buffered only a bounded part of the 50 MB for the slow reader.
    let rss_kib = std::fs::read_to_string(format!("/proc/{}/status", sluice.pid()))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap();
    assert!(
        rss_kib < 40 * 1024,
        "Sluice RSS {rss_kib} KiB while a client reads slowly"
    );
    // The slow reader finally reads everything and the result is whole.
    let mut total = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    let deadline = Instant::now() + Duration::from_secs(30);
    while total < 50_000_000 && Instant::now() < deadline {
        let n = slow.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed after {total} bytes");
        total += n;
    }
    assert!(total >= 50_000_000, "only {total} bytes arrived");
}

/// Logs in over a raw socket (md5, as `start_sluice` configures) and reads
/// up to ReadyForQuery.
async fn raw_login(s: &mut TcpStream, tenant: &Tenant) {
    let p = sluice_protocol::builders::startup_message(&[
        ("user", tenant.user.as_str()),
        ("database", tenant.db.as_str()),
    ]);
    s.write_all(&p).await.unwrap();
    loop {
        let mut head = [0u8; 5];
        s.read_exact(&mut head).await.unwrap();
        let len = u32::from_be_bytes(head[1..5].try_into().unwrap()) as usize;
        let mut body = vec![0u8; len - 4];
        s.read_exact(&mut body).await.unwrap();
        match head[0] {
            b'R' if body[..4] == 5i32.to_be_bytes() => {
                use md5::{Digest, Md5};
                let inner = format!(
                    "{:x}",
                    Md5::digest(format!("{}{}", tenant.password, tenant.user))
                );
                let mut outer = inner.into_bytes();
                outer.extend_from_slice(&body[4..8]);
                let pw = format!("md5{:x}\0", Md5::digest(&outer));
                let mut m = vec![b'p'];
                m.extend_from_slice(&((pw.len() + 4) as u32).to_be_bytes());
                m.extend_from_slice(pw.as_bytes());
                s.write_all(&m).await.unwrap();
            }
            b'Z' => return,
            b'E' => panic!("login failed: {}", String::from_utf8_lossy(&body)),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_shrinks_and_grows_the_pool_without_failing_a_transaction() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "reloadload");
    let sluice = start_sluice(cluster, &tenant, "transaction", 10, "");
    let url = tenant.url(&sluice);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..40 {
        let url = url.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let c = connect(&url).await;
            let mut done = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                c.batch_execute("BEGIN; SELECT pg_sleep(0.01); COMMIT")
                    .await
                    .unwrap_or_else(|e| panic!("client {i} after {done}: {}", describe(&e)));
                done += 1;
            }
            done
        }));
    }
    let settle = |want: usize| {
        let user = tenant.user.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                let n = count_servers(cluster, &user).await;
                if n <= want {
                    return n;
                }
                assert!(Instant::now() < deadline, "{n} servers, pool is {want}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(count_servers(cluster, &tenant.user).await > 3);
    // Shrink to 3 under load: servers beyond it close as they come back.
    sluice.rewrite_ini(&ini(cluster, "transaction", 3, ""));
    sluice.signal(libc::SIGHUP);
    settle(3).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(count_servers(cluster, &tenant.user).await <= 3);
    // Grow to 8: waiting clients get the new room.
    sluice.rewrite_ini(&ini(cluster, "transaction", 8, ""));
    sluice.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(15);
    while count_servers(cluster, &tenant.user).await <= 3 {
        assert!(
            Instant::now() < deadline,
            "the pool never grew after RELOAD"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert!(total > 100, "only {total} transactions ran");
    assert!(count_servers(cluster, &tenant.user).await <= 8);
}

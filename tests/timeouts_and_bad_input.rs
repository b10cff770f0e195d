//! Timeouts (client_login, client_idle, idle_transaction, query) and
//! malformed input: each ends in a clean ErrorResponse and a closed socket,
//! and the pool keeps working for the next client.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sluice_testkit::PgCluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until EOF (bounded by `limit`); returns everything received.
async fn read_to_close(s: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return out,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!("socket still open after {limit:?}; got {out:?}"),
        }
    }
}

/// The ErrorResponse (as "CODE: message") in a byte stream, if any.
fn find_error(bytes: &[u8]) -> Option<String> {
    let mut i = 0;
    while i + 5 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[i + 1..i + 5].try_into().ok()?) as usize;
        if bytes[i] == b'E' {
            return Some(error_text(bytes.get(i + 5..i + 1 + len)?));
        }
        i += 1 + len;
    }
    None
}

fn startup(user: &str, db: &str) -> Vec<u8> {
    let mut body = 196608u32.to_be_bytes().to_vec();
    for (k, v) in [("user", user), ("database", db)] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut p = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    p.extend_from_slice(&body);
    p
}

async fn pool_still_serves(tenant: &Tenant, sluice: &sluice_testkit::SluiceProcess) {
    let c = connect(&tenant.url(sluice)).await;
    assert_eq!(first_value(&c, "SELECT 41 + 1").await, "42");
}

#[tokio::test]
async fn a_client_that_never_sends_a_startup_packet_gets_client_login_timeout() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "tlogin");
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
    let got = read_to_close(&mut s, Duration::from_secs(10)).await;
    assert_eq!(
        find_error(&got).as_deref(),
        Some("08P01: client_login_timeout")
    );
    pool_still_serves(&tenant, &sluice).await;
}

#[tokio::test]
async fn an_idle_client_is_closed_after_client_idle_timeout() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "tidle");
    let sluice = start_sluice(
        cluster,
        &tenant,
        "transaction",
        1,
        "client_idle_timeout = 1",
    );
    let c = connect(&tenant.url(&sluice)).await;
    assert_eq!(first_value(&c, "SELECT 1").await, "1");
    // A client that keeps working meanwhile is not idle and stays.
    let busy = connect(&tenant.url(&sluice)).await;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(first_value(&busy, "SELECT 2").await, "2");
    }
    let err = try_value(&c, "SELECT 1").await.unwrap_err();
    assert!(
        c.is_closed() || describe(&err).contains("client_idle_timeout"),
        "{}",
        describe(&err)
    );
    assert!(
        sluice.log().contains("client_idle_timeout"),
        "{}",
        log_tail(&sluice, 20)
    );
}

#[tokio::test]
async fn an_idle_open_transaction_is_ended_and_its_server_freed() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "tidletx");
    tenant.psql(
        cluster,
        &format!(
            "CREATE TABLE x (a int); ALTER TABLE x OWNER TO {};",
            tenant.user
        ),
    );
    let sluice = start_sluice(
        cluster,
        &tenant,
        "transaction",
        2,
        "idle_transaction_timeout = 1",
    );
    let c = connect(&tenant.url(&sluice)).await;
    c.batch_execute("BEGIN; INSERT INTO x VALUES (1)")
        .await
        .unwrap();
    // Not ended: a client idle outside a transaction, and one inside a
    // transaction that keeps working.
    let idle = connect(&tenant.url(&sluice)).await;
    assert_eq!(first_value(&idle, "SELECT 1").await, "1");
    let working = connect(&tenant.url(&sluice)).await;
    working.batch_execute("BEGIN").await.unwrap();
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(first_value(&working, "SELECT 2").await, "2");
    }
    working.batch_execute("COMMIT").await.unwrap();
    assert_eq!(first_value(&idle, "SELECT 3").await, "3");
    assert!(try_value(&c, "SELECT 1").await.is_err());
    assert!(
        sluice.log().contains("idle transaction timeout"),
        "{}",
        log_tail(&sluice, 20)
    );
    // The one server is free again and the insert was not committed.
    let next = connect(&tenant.url(&sluice)).await;
    assert_eq!(first_value(&next, "SELECT count(*) FROM x").await, "0");
}

#[tokio::test]
async fn a_query_running_past_query_timeout_ends_the_client_and_frees_the_server() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "tquery");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "query_timeout = 1");
    let c = connect(&tenant.url(&sluice)).await;
    let started = Instant::now();
    let err = try_value(&c, "SELECT pg_sleep(20)").await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    let text = describe(&err);
    assert!(c.is_closed() || text.contains("query_timeout"), "{text}");
    pool_still_serves(&tenant, &sluice).await;
}

#[tokio::test]
async fn a_startup_packet_with_an_absurd_length_is_refused() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "tbadstart");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    for junk in [
        &[0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0][..],
        &[0, 0, 0, 2][..],
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
    ] {
        let mut s = TcpStream::connect(("127.0.0.1", sluice.port))
            .await
            .unwrap();
        s.write_all(junk).await.unwrap();
        let got = read_to_close(&mut s, Duration::from_secs(5)).await;
        let e = find_error(&got).unwrap_or_default();
        assert!(e.starts_with("08P01"), "junk {junk:?} got {got:?}");
    }
    pool_still_serves(&tenant, &sluice).await;
}

#[tokio::test]
async fn protocol_version_2_is_refused() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "tv2");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    let mut p = startup(&tenant.user, &tenant.db);
    p[4..8].copy_from_slice(&0x0002_0000u32.to_be_bytes());
    let mut s = TcpStream::connect(("127.0.0.1", sluice.port))
        .await
        .unwrap();
    s.write_all(&p).await.unwrap();
    let got = read_to_close(&mut s, Duration::from_secs(5)).await;
    let e = find_error(&got).unwrap_or_default();
    assert!(e.contains("unsupported protocol version"), "{e:?}");
}

#[tokio::test]
async fn a_malformed_message_mid_transaction_closes_the_client_but_not_the_pool() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "tbadmsg");
    tenant.psql(
        cluster,
        &format!(
            "CREATE TABLE y (a int); ALTER TABLE y OWNER TO {};",
            tenant.user
        ),
    );
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "auth_type = plain");
    let mut raw =
        RawClient::connect(sluice.port, &tenant.user, &tenant.password, &tenant.db, &[]).await;
    raw.simple("BEGIN; INSERT INTO y VALUES (1)").await;
    // A message whose length field is negative.
    raw.send_raw(&[b'Q', 0xff, 0xff, 0xff, 0xf0]).await;
    let m = raw.recv().await;
    assert_eq!(m.0, b'E');
    assert!(
        error_text(&m.1).starts_with("08P01"),
        "{}",
        error_text(&m.1)
    );
    // The only server was rolled back or closed, never handed on dirty.
    let next = connect(&tenant.url(&sluice)).await;
    assert_eq!(first_value(&next, "SELECT count(*) FROM y").await, "0");
    assert_eq!(
        first_value(&next, "SELECT txid_current_if_assigned() IS NULL").await,
        "t"
    );
}

#[tokio::test]
async fn unknown_message_types_are_refused_without_costing_a_server() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "tunknown");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "auth_type = plain");
    let url = tenant.url(&sluice);
    let pid = first_value(&connect(&url).await, "SELECT pg_backend_pid()").await;
    // An unknown tag, a backend tag, a password after login; outside and
    // inside a transaction.
    for (bad, in_tx) in [(b'z', false), (b'T', false), (b'p', true)] {
        let mut raw =
            RawClient::connect(sluice.port, &tenant.user, &tenant.password, &tenant.db, &[]).await;
        if in_tx {
            raw.simple("BEGIN").await;
        }
        raw.send_raw(&[bad, 0, 0, 0, 8, 1, 2, 3, 4]).await;
        let m = raw.recv().await;
        assert_eq!(m.0, b'E', "tag {}", bad as char);
        assert_eq!(error_text(&m.1), "08P01: unknown pkt");
    }
    // The pool's one server was never handed the junk: same backend.
    let again = connect(&url).await;
    assert_eq!(first_value(&again, "SELECT pg_backend_pid()").await, pid);
    assert_eq!(
        first_value(&again, "SELECT txid_current_if_assigned() IS NULL").await,
        "t"
    );
}

#[tokio::test]
async fn a_message_over_max_packet_size_is_refused_without_buffering_it() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "tbig");
    let sluice = start_sluice(
        cluster,
        &tenant,
        "transaction",
        1,
        "auth_type = plain\nmax_packet_size = 100000",
    );
    let mut raw =
        RawClient::connect(sluice.port, &tenant.user, &tenant.password, &tenant.db, &[]).await;
    // Announce 1 GB and send only the header.
    raw.send_raw(&[b'Q', 0x40, 0, 0, 0]).await;
    let m = raw.recv().await;
    assert_eq!(m.0, b'E');
    assert!(
        error_text(&m.1).contains("too large"),
        "{}",
        error_text(&m.1)
    );
    pool_still_serves(&tenant, &sluice).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_requests_with_unknown_keys_cancel_nothing_and_reveal_nothing() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "badcancel");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    let victim = connect(&tenant.url(&sluice)).await;
    // The real server's pid is known to the client (pg_backend_pid), the
    // key is not; Sluice's own pid/key pair is what a cancel must name.
    let server_pid: i32 = first_value(&victim, "SELECT pg_backend_pid()")
        .await
        .parse()
        .unwrap();
    let query = tokio::spawn(async move { victim.simple_query("SELECT pg_sleep(1.5)").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    for (pid, key) in [
        (server_pid, 0),
        (server_pid, -1),
        (0, 0),
        (i32::MAX, i32::MIN),
        (1, 1),
    ] {
        let mut s = TcpStream::connect(("127.0.0.1", sluice.port))
            .await
            .unwrap();
        let mut packet = 16u32.to_be_bytes().to_vec();
        packet.extend_from_slice(&80877102u32.to_be_bytes());
        packet.extend_from_slice(&pid.to_be_bytes());
        packet.extend_from_slice(&key.to_be_bytes());
        s.write_all(&packet).await.unwrap();
        // Closed without a word, whether or not anything matched.
        let reply = read_to_close(&mut s, Duration::from_secs(5)).await;
        assert!(
            reply.is_empty(),
            "cancel ({pid}, {key}) got an answer: {reply:?}"
        );
    }
    let result = query.await.unwrap();
    assert!(
        result.is_ok(),
        "a cancel with unknown keys cancelled the query: {result:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(1000));
    pool_still_serves(&tenant, &sluice).await;
}

#[tokio::test]
async fn protocol_3_99_and_pq_options_get_negotiate_protocol_version_as_from_postgresql() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "tv399");
    let sluice = start_sluice(cluster, &tenant, "transaction", 1, "");
    // 3.99 with a protocol option: told "3.0, option not recognized"
    // first, then the login goes on (md5 asked).
    let mut p = sluice_protocol::builders::startup_message(&[
        ("user", tenant.user.as_str()),
        ("database", tenant.db.as_str()),
        ("_pq_.compression", "on"),
    ])
    .to_vec();
    p[4..8].copy_from_slice(&0x0003_0063u32.to_be_bytes());
    let mut s = TcpStream::connect(("127.0.0.1", sluice.port))
        .await
        .unwrap();
    s.write_all(&p).await.unwrap();
    let (tag, body) = read_raw_message(&mut s).await;
    assert_eq!(tag, b'v', "{body:?}");
    let mut want = 0i32.to_be_bytes().to_vec();
    want.extend_from_slice(&1i32.to_be_bytes());
    want.extend_from_slice(b"_pq_.compression\0");
    assert_eq!(body, want);
    let (tag, body) = read_raw_message(&mut s).await;
    assert_eq!((tag, &body[..4]), (b'R', &5i32.to_be_bytes()[..]));

    // 3.0 without options: no NegotiateProtocolVersion.
    let mut s = TcpStream::connect(("127.0.0.1", sluice.port))
        .await
        .unwrap();
    s.write_all(&startup(&tenant.user, &tenant.db))
        .await
        .unwrap();
    let (tag, _) = read_raw_message(&mut s).await;
    assert_eq!(tag, b'R');
    pool_still_serves(&tenant, &sluice).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_backend_trips_query_timeout_and_other_pools_go_on() {
    let cluster = PgCluster::shared();
    let stuck = Tenant::create(cluster, "tstopped");
    let other = Tenant::create(cluster, "tstopped_other");
    let sluice = sluice_testkit::SluiceProcess::start(
        sluice_bin(),
        &ini(cluster, "transaction", 1, "query_timeout = 1"),
        &format!("{}{}", stuck.userlist(), other.userlist()),
    );
    let c = connect(&stuck.url(&sluice)).await;
    let pid: i32 = first_value(&c, "SELECT pg_backend_pid()")
        .await
        .parse()
        .unwrap();
    // The server stops answering (SIGSTOP), as a hung host would.
    // SAFETY: kill(2) on a pid we just read; no memory involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    struct Resume(i32);
    impl Drop for Resume {
        fn drop(&mut self) {
            // SAFETY: as above.
            unsafe { libc::kill(self.0, libc::SIGCONT) };
        }
    }
    let _resume = Resume(pid);
    let started = Instant::now();
    let query = tokio::spawn(async move { try_value(&c, "SELECT 1").await });
    // Meanwhile another pool (another database) is not held up.
    let o = connect(&other.url(&sluice)).await;
    for i in 0..10 {
        assert_eq!(first_value(&o, &format!("SELECT {i}")).await, i.to_string());
    }
    let err = query.await.unwrap().unwrap_err();
    let text = describe(&err);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}: {text}",
        started.elapsed()
    );
    assert!(
        text.contains("query_timeout") || text.contains("closed"),
        "{text}"
    );
    drop(_resume);
    // The stuck server was closed, not lent again: a new client works.
    pool_still_serves(&stuck, &sluice).await;
}

//! A cancel that arrives late (issue #8): a CancelRequest forwarded to
//! PostgreSQL races the query it targets. If the query ends first and the
//! server goes to another client, the late cancel must not kill that
//! client's statement: the server waits until PostgreSQL has handled the
//! cancel (PgBouncer's `sv_being_canceled`). The soak hit this 14 times in
//! a million transactions; here a stopped postmaster holds the cancel back
//! so the race happens every time.

mod common;

use std::time::Duration;

use common::*;
use tokio_postgres::NoTls;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_cancel_does_not_hit_the_next_client_on_the_same_server() {
    let (cluster, tenant) = private_cluster("late_cancel");
    let extra = format!("admin_users = {}", tenant.user);
    let sluice = start_sluice(&cluster, &tenant, "transaction", 1, &extra);
    let url = tenant.url(&sluice);
    let console = connect(&sluice.url(&tenant.user, &tenant.password, "pgbouncer")).await;
    let a = connect(&url).await;
    let b = connect(&url).await;
    // The pool's one server, opened while the postmaster still answers.
    let pid = first_value(&a, "SELECT pg_backend_pid()").await;

    let token = a.cancel_token();
    let a_query = tokio::spawn(async move { a.simple_query("SELECT pg_sleep(0.5)").await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    // The cancel reaches Sluice, which forwards it to the postmaster, which
    // is stopped: the cancel is in flight until it resumes.
    let postmaster = cluster.postmaster_pid().expect("postmaster running");
    // SAFETY: kill(2) on a pid; no memory involved.
    assert_eq!(unsafe { libc::kill(postmaster, libc::SIGSTOP) }, 0);
    let resume = Resume(postmaster);
    tokio::spawn(async move { token.cancel_query(NoTls).await });
    // A's query ends by itself, its cancel still pending.
    let a_result = a_query.await.unwrap();
    assert!(a_result.is_ok(), "the cancel reached a stopped postmaster?");

    // B asks for the one server while the cancel is still pending, and
    // the postmaster handles the cancel while B's query would be running.
    let b_query = tokio::spawn(async move {
        let r = b
            .simple_query("SELECT pg_backend_pid()::text || ' ' || pg_sleep(1.0)::text")
            .await;
        (r.map(|rows| rows.len()).map_err(|e| describe(&e)), b)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Meanwhile SHOW POOLS has the server held back and B waiting.
    let pools = console.simple_query("SHOW POOLS").await.unwrap();
    let row = pools
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) if r.get("database") == Some(&tenant.db) => {
                Some((
                    r.get("sv_being_canceled").map(str::to_owned),
                    r.get("cl_waiting").map(str::to_owned),
                ))
            }
            _ => None,
        })
        .expect("the pool in SHOW POOLS");
    assert_eq!(
        row,
        (Some("1".to_owned()), Some("1".to_owned())),
        "(sv_being_canceled, cl_waiting)"
    );
    drop(resume);
    let (b_result, b) = tokio::time::timeout(Duration::from_secs(15), b_query)
        .await
        .expect("B's query hangs")
        .unwrap();
    assert!(
        b_result.is_ok(),
        "the late cancel meant for A killed B's query: {b_result:?}"
    );
    // Same server for both (pool of 1), and it still works.
    assert_eq!(first_value(&b, "SELECT pg_backend_pid()").await, pid);
}

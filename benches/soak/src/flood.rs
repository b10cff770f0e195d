//! The flood: N clients logged in at once on a pool of 20, each served; a
//! burst beyond max_client_conn refused with PgBouncer's error while the N
//! go on.

use std::time::Instant;

use futures_util::future::join_all;

use crate::report::Report;
use crate::rig::{mib, Conn, Rig, POOL_SIZE};

/// Logins in flight at once while the flood builds up.
const CONCURRENT_LOGINS: usize = 250;

pub async fn run(rig: &Rig, n: u32, burst: u32, report: &mut Report) {
    eprintln!(
        "==> flood: {n} clients on a pool of {POOL_SIZE} (max_client_conn {}), then {burst} more",
        rig.max_client_conn
    );
    let rss_before = rig.rss();
    let started = Instant::now();
    let mut held: Vec<Conn> = Vec::with_capacity(n as usize);
    let mut login_errors: Vec<String> = Vec::new();
    let mut left = n as usize;
    while left > 0 {
        let k = left.min(CONCURRENT_LOGINS);
        for r in join_all((0..k).map(|_| rig.login())).await {
            match r {
                Ok(c) => held.push(c),
                Err(e) => login_errors.push(e),
            }
        }
        left -= k;
    }
    let login_secs = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let first = join_all(held.iter().map(|c| c.client.simple_query("SELECT 1"))).await;
    let served = first.iter().filter(|r| r.is_ok()).count();
    let serve_secs = started.elapsed().as_secs_f64();
    let rss_flood = rig.rss();

    let burst_results = join_all((0..burst).map(|_| rig.login())).await;
    let mut admitted = Vec::new();
    let mut refused_right = 0;
    let mut refused_other = Vec::new();
    for r in burst_results {
        match r {
            Ok(c) => admitted.push(c),
            Err(e) if e.contains("no more connections allowed (max_client_conn)") => {
                refused_right += 1
            }
            Err(e) => refused_other.push(e),
        }
    }
    let again = join_all(held.iter().map(|c| c.client.simple_query("SELECT 2"))).await;
    let served_again = again.iter().filter(|r| r.is_ok()).count();
    let first_error = first
        .iter()
        .chain(again.iter())
        .find_map(|r| r.as_ref().err().map(crate::rig::error_text));
    join_all(held.into_iter().chain(admitted).map(Conn::close)).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let rss_after = rig.rss();

    report.line(format!(
        "flood: {} of {n} clients logged in in {login_secs:.1} s, {served} served at once in \
         {serve_secs:.1} s on {POOL_SIZE} servers; Sluice RSS {:.1} → {:.1} MiB ({:.0} bytes/client), \
         {:.1} MiB once they left",
        n as usize - login_errors.len(),
        mib(rss_before),
        mib(rss_flood),
        rss_flood.saturating_sub(rss_before) as f64 / f64::from(n.max(1)),
        mib(rss_after)
    ));
    report.check(
        login_errors.is_empty() && served == n as usize && served_again == n as usize,
        format!(
            "flood: all {n} clients logged in and served twice ({} login errors{}, {served} + \
             {served_again} served{})",
            login_errors.len(),
            login_errors
                .first()
                .map(|e| format!(", first: {e}"))
                .unwrap_or_default(),
            first_error
                .map(|e| format!(", first query error: {e}"))
                .unwrap_or_default()
        ),
    );
    report.check(
        refused_right == burst as usize,
        format!(
            "flood: {refused_right} of {burst} clients beyond max_client_conn refused with \
             \"no more connections allowed (max_client_conn)\" ({} other errors{})",
            refused_other.len(),
            refused_other
                .first()
                .map(|e| format!(", first: {e}"))
                .unwrap_or_default()
        ),
    );
}

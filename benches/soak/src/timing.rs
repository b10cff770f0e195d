//! Failed logins: a known user with a wrong password against a user Sluice
//! does not know, for md5 and SCRAM. The texts must be the same (but for
//! the user name) and the times alike, so a stranger cannot learn which
//! users exist.

use std::time::Instant;

use sluice_testkit::{sluice_bin, SluiceProcess};

use crate::report::{quantiles, Report};
use crate::rig::{ini, userlist, Conn, Rig, DB, USER};

const UNKNOWN: &str = "soak_nobody";
const WARM_UP: u32 = 20;

pub async fn run(rig: &Rig, rounds: u32, report: &mut Report) {
    eprintln!("==> login timing: {rounds} failed logins of each kind, md5 and SCRAM");
    compare("md5", rig.sluice.port, rounds, report).await;
    let scram = SluiceProcess::start(
        &sluice_bin(),
        &ini(&rig.cluster, "scram-sha-256", 100),
        &userlist(),
    );
    compare("SCRAM", scram.port, rounds, report).await;
}

/// Time from connect to the error of one failed login, and the error's
/// text with the user name masked.
async fn attempt(port: u16, user: &str) -> (f64, String) {
    let t = Instant::now();
    let r = Conn::open(port, user, "not the password", DB).await;
    let micros = t.elapsed().as_secs_f64() * 1e6;
    let text = match r {
        Ok(c) => {
            c.close().await;
            "LOGIN SUCCEEDED".to_owned()
        }
        Err(e) => e.replace(user, "<user>"),
    };
    (micros, text)
}

async fn compare(method: &str, port: u16, rounds: u32, report: &mut Report) {
    for _ in 0..WARM_UP {
        attempt(port, USER).await;
        attempt(port, UNKNOWN).await;
    }
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    let mut texts = std::collections::BTreeMap::<(bool, String), u32>::new();
    for i in 0..rounds {
        // Alternate which goes first, so neither always follows the other.
        let order = if i % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for is_known in order {
            let (us, text) = attempt(port, if is_known { USER } else { UNKNOWN }).await;
            if is_known {
                known.push(us)
            } else {
                unknown.push(us)
            }
            *texts.entry((is_known, text)).or_default() += 1;
        }
    }
    let (km, k10, k90) = quantiles(&mut known);
    let (um, u10, u90) = quantiles(&mut unknown);
    let diff = (km - um).abs();
    report.line(format!(
        "login timing {method}: wrong password median {km:.0} µs (p10 {k10:.0}, p90 {k90:.0}), \
         unknown user median {um:.0} µs (p10 {u10:.0}, p90 {u90:.0}); medians differ by \
         {diff:.0} µs ({:.1}%), {rounds} of each",
        100.0 * diff / km.max(1.0)
    ));
    let known_texts: Vec<_> = texts.keys().filter(|(k, _)| *k).map(|(_, t)| t).collect();
    let unknown_texts: Vec<_> = texts.keys().filter(|(k, _)| !*k).map(|(_, t)| t).collect();
    report.check(
        known_texts.len() == 1
            && known_texts == unknown_texts
            && !known_texts[0].contains("SUCCEEDED"),
        format!(
            "login timing {method}: one error text for both: wrong password {known_texts:?}, \
             unknown user {unknown_texts:?}"
        ),
    );
    // The spread of either kind bounds what can be told apart: medians
    // closer than a tenth of the median (or 100 µs) are noise on this box.
    report.check(
        diff <= (0.1 * km).max(100.0),
        format!("login timing {method}: medians within 10% (or 100 µs) of each other"),
    );
}

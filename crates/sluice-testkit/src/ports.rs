//! Free TCP ports on 127.0.0.1, never the same one twice within a process.
//!
//! Ports are drawn at random from below the kernel's ephemeral range, so that
//! the thousands of outgoing connections a load test makes cannot take a port
//! that a cluster or a Sluice is about to listen on (and parallel test
//! processes rarely pick the same one). If that range is too small, the kernel
//! picks (`bind 127.0.0.1:0`).

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::BuildHasher;
use std::net::TcpListener;
use std::sync::{Mutex, OnceLock};

const LOWEST: u16 = 10_000;
const HIGHEST_EXCLUSIVE: u16 = 32_768;

fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static USED: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    USED.get_or_init(|| Mutex::new(HashSet::new()))
}

/// A TCP port on 127.0.0.1 that was free when checked and that this process
/// has not handed out before.
pub fn free_port() -> u16 {
    let mut used = handed_out().lock().unwrap_or_else(|e| e.into_inner());
    let (lo, hi) = candidate_range();
    if hi > lo + 1_000 {
        let random = RandomState::new();
        for attempt in 0u32..2_000 {
            let span = u64::from(hi - lo);
            let port = lo + (random.hash_one(attempt) % span) as u16;
            if !used.contains(&port) && is_free(port) {
                used.insert(port);
                return port;
            }
        }
    }
    for _ in 0..1_000 {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .unwrap_or_else(|e| panic!("sluice-testkit: cannot bind 127.0.0.1:0: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("sluice-testkit: local_addr: {e}"))
            .port();
        if used.insert(port) {
            return port;
        }
    }
    panic!("sluice-testkit: no free port found on 127.0.0.1");
}

fn is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// [10000, start of the ephemeral range) capped at 32768.
fn candidate_range() -> (u16, u16) {
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(HIGHEST_EXCLUSIVE);
    (LOWEST, ephemeral_start.min(HIGHEST_EXCLUSIVE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_never_repeats_and_is_bindable() {
        let mut seen = HashSet::new();
        for _ in 0..200 {
            let port = free_port();
            assert!(seen.insert(port), "port {port} handed out twice");
        }
        let port = free_port();
        TcpListener::bind(("127.0.0.1", port)).expect("free port can be bound");
    }
}

//! The fuzz targets' bodies, one per parser that reads peer or operator
//! input. Each must return for any input without panicking, and checks
//! what can be checked about its result. `fuzz_targets/*.rs` hand them to
//! libFuzzer (cargo fuzz, nightly); `tests/fuzz_corpus.rs` in the main
//! package runs every file of `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/` through them on stable, in CI.

use std::path::Path;

use bytes::BytesMut;
use sluice_auth::{parse_userlist, ScramServer, Secret};
use sluice_protocol::startup::{parse_startup, take_startup};
use sluice_protocol::{backend, frontend, take_message};

/// A target's body.
pub type Target = fn(&[u8]);

/// The targets, by name (the corpus folder names).
pub const TARGETS: [(&str, Target); 6] = [
    ("startup", startup),
    ("frontend", frontend),
    ("backend", backend),
    ("ini", ini),
    ("userlist", userlist),
    ("scram", scram),
];

const MAX_MESSAGE: usize = 1 << 20;

/// StartupMessage / SSLRequest / GSSENCRequest / CancelRequest packets,
/// back to back, as a client's first bytes.
pub fn startup(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(packet)) = take_startup(&mut buf) {
        assert!(packet.len() >= 8);
        let _ = parse_startup(&packet);
    }
}

/// Splits `data` into messages as the session does; every message's
/// bytes are exactly what its header declared, in order.
fn messages(data: &[u8], mut each: impl FnMut(u8, &[u8])) {
    let mut buf = BytesMut::from(data);
    let mut consumed = 0;
    while let Ok(Some(m)) = take_message(&mut buf, MAX_MESSAGE) {
        let raw = m.raw();
        assert_eq!(&data[consumed..consumed + raw.len()], &raw[..]);
        let declared = u32::from_be_bytes([raw[1], raw[2], raw[3], raw[4]]) as usize;
        assert_eq!(declared + 1, raw.len());
        consumed += raw.len();
        each(m.tag(), m.body());
    }
}

/// A client's message stream after login, through the views Sluice uses.
pub fn frontend(data: &[u8]) {
    messages(data, |tag, body| match tag {
        frontend::QUERY => {
            let _ = frontend::query_text(body);
        }
        frontend::PARSE => {
            let _ = frontend::parse_name(body);
        }
        frontend::BIND => {
            let _ = frontend::bind_names(body);
        }
        frontend::DESCRIBE | frontend::CLOSE => {
            let _ = frontend::target(body);
        }
        b'p' => {
            let _ = frontend::password(body);
            let _ = frontend::sasl_initial_response(body);
        }
        _ => {}
    });
}

/// A server's message stream, through the views Sluice uses.
pub fn backend(data: &[u8]) {
    messages(data, |tag, body| match tag {
        b'R' => {
            let _ = backend::auth_request(body);
        }
        b'S' => {
            let _ = backend::parameter_status(body);
        }
        b'K' => {
            let _ = backend::backend_key_data(body);
        }
        b'Z' => {
            let _ = backend::ready_for_query(body);
        }
        b'D' => {
            let _ = backend::data_row(body);
        }
        b'E' | b'N' => {
            let _ = backend::error_fields(body);
        }
        _ => {}
    });
}

/// pgbouncer.ini text (includes resolve under a directory that does not
/// exist).
pub fn ini(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = sluice_config::parse_str(text, Path::new("/nonexistent/sluice-fuzz/pgbouncer.ini"));
    }
}

/// userlist.txt text.
pub fn userlist(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_userlist(text);
    }
}

/// A SCRAM exchange from the client's side: `data` is client-first,
/// a NUL, then client-final. Never accepted without the right proof.
pub fn scram(data: &[u8]) {
    let secret = Secret::Plain("pencil".to_owned());
    let Ok(mut server) = ScramServer::with_iterations(&secret, 1) else {
        return;
    };
    let (first, last) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    if server.handle_client_first(first).is_ok() && server.handle_client_final(last).is_ok() {
        // A random nonce per exchange: a canned input cannot carry a
        // valid proof for it.
        panic!("a SCRAM exchange from fuzz input was accepted");
    }
}

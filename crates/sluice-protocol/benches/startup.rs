//! Startup hot path: the first packet of every client connection.
//!
//! Run: `cargo bench -p sluice-protocol --bench startup` (add `-- --quick`
//! for a short run).

use std::hint::black_box;

use bytes::{BufMut, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use sluice_protocol::builders;
use sluice_protocol::startup::{parse_startup, take_startup, StartupPacket, SSL_REQUEST_CODE};

/// What libpq-based clients typically send (psql / psycopg with a few
/// settings, or a JDBC-like driver).
const PARAMS: &[(&str, &str)] = &[
    ("user", "app_user"),
    ("database", "app_production"),
    ("application_name", "checkout-service"),
    ("client_encoding", "UTF8"),
    ("DateStyle", "ISO, MDY"),
    ("TimeZone", "Europe/Berlin"),
    ("extra_float_digits", "3"),
    (
        "options",
        "-c statement_timeout=5000 -c search_path=app,public",
    ),
];

fn ssl_request() -> BytesMut {
    let mut b = BytesMut::with_capacity(8);
    b.put_i32(8);
    b.put_i32(SSL_REQUEST_CODE);
    b
}

fn startup(c: &mut Criterion) {
    let packet = builders::startup_message(PARAMS);
    match parse_startup(&packet).unwrap() {
        StartupPacket::Startup(p) => {
            assert_eq!(p.params.len(), PARAMS.len());
            assert_eq!(p.get("database"), Some("app_production"));
        }
        other => panic!("{other:?}"),
    }
    let ssl = ssl_request();
    assert_eq!(parse_startup(&ssl).unwrap(), StartupPacket::SslRequest);
    let cancel = builders::cancel_request(12_345, -987_654_321);
    assert!(matches!(
        parse_startup(&cancel).unwrap(),
        StartupPacket::Cancel { pid: 12_345, .. }
    ));

    let mut g = c.benchmark_group("startup");
    g.bench_function("startup_message_parse", |b| {
        b.iter(|| parse_startup(black_box(&packet)).unwrap())
    });
    // Framing from the read buffer, then parsing, as a client login does.
    g.bench_function("startup_message_take_and_parse", |b| {
        b.iter_batched_ref(
            || packet.clone(),
            |buf| {
                let raw = take_startup(black_box(buf)).unwrap().unwrap();
                parse_startup(&raw).unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("ssl_request_parse", |b| {
        b.iter(|| parse_startup(black_box(&ssl)).unwrap())
    });
    g.bench_function("cancel_request_parse", |b| {
        b.iter(|| parse_startup(black_box(&cancel)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, startup);
criterion_main!(benches);

//! Framing hot paths: splitting a server result stream and a pipelined
//! client stream into messages.
//!
//! Run: `cargo bench -p sluice-protocol --bench framing` (add `-- --quick`
//! for a short run).

use std::hint::black_box;

use bytes::{BufMut, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sluice_protocol::builders::{
    put_bind_unnamed, put_execute_unnamed, put_message, put_parse_unnamed, put_ready_for_query,
    put_sync,
};
use sluice_protocol::framing::peek_header;
use sluice_protocol::{backend, frontend, take_message};

/// PgBouncer's default max_packet_size.
const MAX_PACKET: usize = 2_147_483_647;
const ROWS: usize = 1_000;
const PIPELINED: usize = 100;

fn put_cstr(b: &mut BytesMut, s: &str) {
    b.put_slice(s.as_bytes());
    b.put_u8(0);
}

/// `SELECT id, name, email, created_at FROM users LIMIT 1000` as a server
/// sends it: RowDescription, 1,000 DataRows of ~100 bytes, CommandComplete,
/// ReadyForQuery.
fn server_result_stream() -> (BytesMut, usize) {
    let columns: [(&str, i32, i16); 4] = [
        ("id", 23, 4),           // int4
        ("name", 25, -1),        // text
        ("email", 25, -1),       // text
        ("created_at", 1184, 8), // timestamptz
    ];
    let mut buf = BytesMut::with_capacity(128 * 1024);
    put_message(&mut buf, b'T', |b| {
        b.put_i16(columns.len() as i16);
        for (i, (name, oid, size)) in columns.iter().enumerate() {
            put_cstr(b, name);
            b.put_i32(16_384); // table OID
            b.put_i16(i as i16 + 1);
            b.put_i32(*oid);
            b.put_i16(*size);
            b.put_i32(-1); // typmod
            b.put_i16(0); // text format
        }
    });
    for i in 0..ROWS {
        let id = (100_000 + i).to_string();
        let name = format!("User Number {i:05}");
        let email = format!("user.number.{i:05}@example.com");
        let created = format!("2024-05-{:02} 12:34:56.{i:06}+00", i % 28 + 1);
        put_message(&mut buf, backend::DATA_ROW, |b| {
            b.put_i16(4);
            for v in [&id, &name, &email, &created] {
                b.put_i32(v.len() as i32);
                b.put_slice(v.as_bytes());
            }
        });
    }
    put_message(&mut buf, backend::COMMAND_COMPLETE, |b| {
        put_cstr(b, &format!("SELECT {ROWS}"))
    });
    put_ready_for_query(&mut buf, b'I');
    (buf, ROWS + 3)
}

/// What an extended-protocol client pipelines: Parse/Bind/Describe/Execute/Sync
/// ×100 (as pgbench -M extended, or a driver's pipeline mode).
fn client_pipeline_stream() -> (BytesMut, usize) {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    for i in 0..PIPELINED {
        let aid = (1 + i * 997 % 100_000).to_string();
        put_parse_unnamed(
            &mut buf,
            "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
        );
        put_bind_unnamed(&mut buf, &[Some(&aid)]);
        put_message(&mut buf, frontend::DESCRIBE, |b| {
            b.put_u8(b'P');
            b.put_u8(0);
        });
        put_execute_unnamed(&mut buf);
        put_sync(&mut buf);
    }
    (buf, PIPELINED * 5)
}

/// take_message until the buffer is empty; returns the message count.
fn take_all(buf: &mut BytesMut) -> usize {
    let mut n = 0;
    while let Some(m) = take_message(buf, MAX_PACKET).unwrap() {
        black_box(m.tag());
        n += 1;
    }
    n
}

/// Header-only walk over the stream, as the proxy does when it streams a
/// result through without looking at the rows.
fn peek_all(mut buf: &[u8]) -> usize {
    let mut n = 0;
    while let Some((tag, total)) = peek_header(buf, MAX_PACKET).unwrap() {
        black_box(tag);
        buf = &buf[total..];
        n += 1;
    }
    n
}

/// Header walk plus the copy into the client's write buffer (the proxy's
/// pass-through path, without the socket).
fn peek_and_forward(mut buf: &[u8], out: &mut BytesMut) -> usize {
    let mut n = 0;
    while let Some((_tag, total)) = peek_header(buf, MAX_PACKET).unwrap() {
        out.extend_from_slice(&buf[..total]);
        buf = &buf[total..];
        n += 1;
    }
    n
}

/// take_message plus the name views the session loop reads from Parse,
/// Bind and Describe (prepared-statement mapping).
fn take_and_view_all(buf: &mut BytesMut) -> usize {
    let mut n = 0;
    while let Some(m) = take_message(buf, MAX_PACKET).unwrap() {
        match m.tag() {
            frontend::PARSE => {
                black_box(frontend::parse_name(m.body()).unwrap());
            }
            frontend::BIND => {
                black_box(frontend::bind_names(m.body()).unwrap());
            }
            frontend::DESCRIBE => {
                black_box(frontend::target(m.body()).unwrap());
            }
            t => {
                black_box(t);
            }
        }
        n += 1;
    }
    n
}

fn server_stream(c: &mut Criterion) {
    let (stream, count) = server_result_stream();
    let avg = (stream.len() - 200) / ROWS;
    assert!((90..=110).contains(&avg), "DataRow size {avg}");
    assert_eq!(take_all(&mut stream.clone()), count);
    assert_eq!(peek_all(&stream), count);

    let mut g = c.benchmark_group(format!("framing/server_select_{ROWS}_rows"));
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("take_message", |b| {
        b.iter_batched_ref(
            || stream.clone(),
            |buf| take_all(black_box(buf)),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("peek_header", |b| b.iter(|| peek_all(black_box(&stream))));
    let mut out = BytesMut::with_capacity(stream.len());
    g.bench_function("peek_header_forward", |b| {
        b.iter(|| {
            out.clear();
            peek_and_forward(black_box(&stream), &mut out)
        })
    });
    g.finish();
}

fn client_stream(c: &mut Criterion) {
    let (stream, count) = client_pipeline_stream();
    assert_eq!(take_all(&mut stream.clone()), count);
    assert_eq!(take_and_view_all(&mut stream.clone()), count);
    assert_eq!(peek_all(&stream), count);

    let mut g = c.benchmark_group(format!("framing/client_pipeline_{PIPELINED}x_PBDES"));
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("take_message", |b| {
        b.iter_batched_ref(
            || stream.clone(),
            |buf| take_all(black_box(buf)),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("take_message_and_views", |b| {
        b.iter_batched_ref(
            || stream.clone(),
            |buf| take_and_view_all(black_box(buf)),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("peek_header", |b| b.iter(|| peek_all(black_box(&stream))));
    g.finish();
}

criterion_group!(benches, server_stream, client_stream);
criterion_main!(benches);

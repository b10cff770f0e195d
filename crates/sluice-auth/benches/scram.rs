//! Authentication hot paths: what a client login costs the pooler.
//!
//! Run: `cargo bench -p sluice-auth --bench scram` (add `-- --quick` for a
//! short run).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use sluice_auth::{
    md5_client_response, md5_secret, verify_md5_response, ScramClient, ScramSecret, ScramServer,
    Secret, DEFAULT_SCRAM_ITERATIONS, SCRAM_SHA_256,
};

const USER: &str = "app_user";
const PASSWORD: &str = "correct horse battery staple";
const SALT: [u8; 16] = *b"0123456789abcdef";

/// A stored verifier as it comes out of userlist.txt / auth_query
/// (`SCRAM-SHA-256$4096:...`), and the ClientKey that goes with it.
///
/// The client below logs in with the ClientKey (the crate's pass-through
/// mode) rather than the password, so the exchange is real on both sides
/// but does not pay the client's own PBKDF2 in every iteration.
fn stored_secret() -> (Secret, ScramSecret, [u8; 32]) {
    let verifier = ScramSecret::from_password(PASSWORD, &SALT, DEFAULT_SCRAM_ITERATIONS);
    let secret = Secret::parse(&verifier.to_string()).unwrap();
    let Secret::Scram(scram) = &secret else {
        panic!("not a SCRAM secret");
    };
    let scram = scram.clone();
    // One login with the password proper, to recover the ClientKey.
    let mut server = ScramServer::new(&secret).unwrap();
    server.set_mechanism(SCRAM_SHA_256).unwrap();
    let mut client = ScramClient::from_password(PASSWORD);
    let server_first = server.handle_client_first(&client.client_first()).unwrap();
    let client_final = client.handle_server_first(&server_first).unwrap();
    let server_final = server.handle_client_final(&client_final).unwrap();
    client.handle_server_final(&server_final).unwrap();
    let client_key = server.client_key().unwrap();
    (secret, scram, client_key)
}

/// client-first → server-first → client-final → proof check → server-final,
/// both sides.
fn full_exchange(secret: &Secret, scram: &ScramSecret, client_key: [u8; 32]) {
    let mut server = ScramServer::new(secret).unwrap();
    server.set_mechanism(SCRAM_SHA_256).unwrap();
    let mut client = ScramClient::from_client_key(client_key, scram);
    let server_first = server.handle_client_first(&client.client_first()).unwrap();
    let client_final = client.handle_server_first(&server_first).unwrap();
    let server_final = server.handle_client_final(&client_final).unwrap();
    client.handle_server_final(&server_final).unwrap();
    assert!(server.is_done() && client.is_done());
}

/// The same exchange, timing only the server's calls (ScramServer::new,
/// set_mechanism, handle_client_first, handle_client_final).
fn server_side(iters: u64, secret: &Secret, scram: &ScramSecret, client_key: [u8; 32]) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let mut client = ScramClient::from_client_key(client_key, scram);
        let client_first = client.client_first();

        let t = Instant::now();
        let mut server = ScramServer::new(black_box(secret)).unwrap();
        server.set_mechanism(SCRAM_SHA_256).unwrap();
        let server_first = server.handle_client_first(&client_first).unwrap();
        total += t.elapsed();

        let client_final = client.handle_server_first(&server_first).unwrap();

        let t = Instant::now();
        let server_final = server.handle_client_final(&client_final).unwrap();
        total += t.elapsed();

        client.handle_server_final(&server_final).unwrap();
        assert!(server.is_done());
    }
    total
}

fn scram(c: &mut Criterion) {
    let (secret, scram, client_key) = stored_secret();

    let mut g = c.benchmark_group("scram");
    g.bench_function("exchange_stored_secret_both_sides", |b| {
        b.iter(|| full_exchange(&secret, &scram, client_key))
    });
    g.bench_function("exchange_stored_secret_server_side", |b| {
        b.iter_custom(|iters| server_side(iters, &secret, &scram, client_key))
    });
    g.finish();

    // PBKDF2-HMAC-SHA-256, 4096 rounds: what a login costs when the secret
    // must be derived from a plaintext password (plaintext userlist entry),
    // and what every client pays once per login on its own side.
    let mut g = c.benchmark_group("scram_derive");
    g.sample_size(10);
    g.bench_function("secret_from_password_4096", |b| {
        b.iter(|| ScramSecret::from_password(black_box(PASSWORD), &SALT, DEFAULT_SCRAM_ITERATIONS))
    });
    let plain = Secret::Plain(PASSWORD.to_owned());
    g.bench_function("server_new_plaintext_secret", |b| {
        b.iter(|| ScramServer::new(black_box(&plain)).unwrap())
    });
    g.finish();
}

fn md5(c: &mut Criterion) {
    let salt = [0x5a, 0x17, 0xc3, 0x08];
    let response = md5_client_response(USER, PASSWORD, salt);
    let stored = Secret::Md5(md5_secret(USER, PASSWORD));
    let plain = Secret::Plain(PASSWORD.to_owned());
    assert!(verify_md5_response(&stored, USER, salt, &response));
    assert!(verify_md5_response(&plain, USER, salt, &response));

    let mut g = c.benchmark_group("md5");
    g.bench_function("verify_response_md5_secret", |b| {
        b.iter(|| verify_md5_response(black_box(&stored), USER, salt, &response))
    });
    g.bench_function("verify_response_plain_secret", |b| {
        b.iter(|| verify_md5_response(black_box(&plain), USER, salt, &response))
    });
    g.finish();
}

criterion_group!(benches, scram, md5);
criterion_main!(benches);

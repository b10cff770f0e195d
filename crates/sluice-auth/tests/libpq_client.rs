//! Checks ScramServer against libpq as the client (opt-in: needs SLUICE_AUTH_TEST_PSQL, the path of a psql binary).
//!
//! Run with `SLUICE_AUTH_TEST_PSQL=/usr/lib/postgresql/15/bin/psql cargo test -p sluice-auth -- --ignored`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};

use sluice_auth::{ScramError, ScramSecret, ScramServer, Secret, SCRAM_SHA_256};

fn read_msg(s: &mut TcpStream, tagged: bool) -> (u8, Vec<u8>) {
    let mut tag = [0u8; 1];
    if tagged {
        s.read_exact(&mut tag).expect("tag");
    }
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("len");
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize - 4];
    s.read_exact(&mut body).expect("body");
    (tag[0], body)
}

fn write_msg(s: &mut TcpStream, tag: u8, body: &[u8]) {
    let mut msg = vec![tag];
    msg.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    msg.extend_from_slice(body);
    s.write_all(&msg).expect("write");
}

fn auth(s: &mut TcpStream, code: i32, data: &[u8]) {
    let mut body = code.to_be_bytes().to_vec();
    body.extend_from_slice(data);
    write_msg(s, b'R', &body);
}

/// Serves one psql login with SCRAM; returns the exchange's outcome.
fn serve_one(listener: &TcpListener, secret: &Secret) -> Result<(), ScramError> {
    let (mut s, _) = listener.accept().expect("accept");
    let (_, startup) = read_msg(&mut s, false);
    assert_eq!(
        &startup[..4],
        &196608i32.to_be_bytes(),
        "no SSL/GSS expected"
    );
    let mut server = ScramServer::new(secret)?;
    let mut mechs = SCRAM_SHA_256.as_bytes().to_vec();
    mechs.extend_from_slice(b"\0\0");
    auth(&mut s, 10, &mechs);
    let (tag, body) = read_msg(&mut s, true);
    assert_eq!(tag, b'p');
    let mech_end = body.iter().position(|&b| b == 0).expect("mechanism");
    assert_eq!(&body[..mech_end], SCRAM_SHA_256.as_bytes());
    let data = &body[mech_end + 5..];
    let result = (|| {
        let server_first = server.handle_client_first(data)?;
        auth(&mut s, 11, &server_first);
        let (_, client_final) = read_msg(&mut s, true);
        let server_final = server.handle_client_final(&client_final)?;
        auth(&mut s, 12, &server_final);
        Ok(())
    })();
    match result {
        Ok(()) => {
            auth(&mut s, 0, &[]);
            write_msg(&mut s, b'S', b"server_version\x0015.0\0");
            write_msg(&mut s, b'K', &[0, 0, 0, 1, 0, 0, 0, 2]);
            write_msg(&mut s, b'Z', b"I");
            // psql -c '\q' disconnects with Terminate.
            let (tag, _) = read_msg(&mut s, true);
            assert_eq!(tag, b'X');
        }
        Err(_) => {
            write_msg(
                &mut s,
                b'E',
                b"SFATAL\0C28P01\0Mpassword authentication failed\0\0",
            );
        }
    }
    result
}

fn psql(port: u16, password: &str) -> std::process::Child {
    let bin = std::env::var("SLUICE_AUTH_TEST_PSQL").expect("set SLUICE_AUTH_TEST_PSQL");
    Command::new(bin)
        .args(["-X", "-w", "-c", "\\q"])
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", port.to_string())
        .env("PGUSER", "someone")
        .env("PGDATABASE", "db")
        .env("PGSSLMODE", "disable")
        .env("PGGSSENCMODE", "disable")
        .env("PGPASSWORD", password)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn psql")
}

#[test]
#[ignore = "needs SLUICE_AUTH_TEST_PSQL=/path/to/psql"]
fn libpq_logs_in_with_scram() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let unicode = "pässwörd \u{fb01}";
    let cases: Vec<(Secret, &str, bool)> = vec![
        (Secret::Plain("pw".into()), "pw", true),
        (Secret::Plain("pw".into()), "wrong", false),
        (
            Secret::Scram(ScramSecret::from_password("pw", b"0123456789abcdef", 4096)),
            "pw",
            true,
        ),
        (
            Secret::Scram(ScramSecret::from_password(unicode, b"salt", 4096)),
            "pässwörd fi",
            true,
        ),
        (Secret::Plain(unicode.into()), unicode, true),
    ];
    for (secret, password, ok) in cases {
        let mut child = psql(port, password);
        let outcome = serve_one(&listener, &secret);
        let status = child.wait().expect("psql exit");
        assert_eq!(outcome.is_ok(), ok, "{password}: {outcome:?}");
        assert_eq!(status.success(), ok, "{password}: psql {status}");
        if !ok {
            assert_eq!(outcome, Err(ScramError::InvalidProof));
        }
    }
}

//! Checks ScramClient, pass-through and MD5 responses against a real PostgreSQL server (opt-in: needs SLUICE_AUTH_TEST_PG).
//!
//! Run with `SLUICE_AUTH_TEST_PG=127.0.0.1:5432 cargo test -p sluice-auth -- --ignored`
//! against a throwaway cluster whose pg_hba.conf has, in this order:
//!
//! ```text
//! host all postgres        127.0.0.1/32 trust
//! host all sluice_auth_md5 127.0.0.1/32 md5
//! host all all             127.0.0.1/32 scram-sha-256
//! ```
//!
//! The test (re)creates the roles `sluice_auth_scram` and `sluice_auth_md5`.

use std::io::{Read, Write};
use std::net::TcpStream;

use sluice_auth::{
    md5_response_from_secret, verify_plain_password, ScramClient, ScramServer, Secret,
    SCRAM_SHA_256,
};

type Result<T> = std::result::Result<T, String>;

fn addr() -> String {
    std::env::var("SLUICE_AUTH_TEST_PG").expect("set SLUICE_AUTH_TEST_PG=host:port")
}

struct Conn(TcpStream);

impl Conn {
    fn startup(user: &str) -> Result<Conn> {
        let stream = TcpStream::connect(addr()).map_err(|e| e.to_string())?;
        let mut body = 196608i32.to_be_bytes().to_vec();
        for s in ["user", user, "database", "postgres", ""] {
            body.extend_from_slice(s.as_bytes());
            body.push(0);
        }
        let mut conn = Conn(stream);
        conn.write_raw(None, &body)?;
        Ok(conn)
    }

    fn write_raw(&mut self, tag: Option<u8>, body: &[u8]) -> Result<()> {
        let mut msg = Vec::new();
        msg.extend(tag);
        msg.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        msg.extend_from_slice(body);
        self.0.write_all(&msg).map_err(|e| e.to_string())
    }

    fn read(&mut self) -> Result<(u8, Vec<u8>)> {
        let mut head = [0u8; 5];
        self.0.read_exact(&mut head).map_err(|e| e.to_string())?;
        let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len - 4];
        self.0.read_exact(&mut body).map_err(|e| e.to_string())?;
        if head[0] == b'E' {
            let msg = body
                .split(|&b| b == 0)
                .find(|f| f.first() == Some(&b'M'))
                .map(|f| String::from_utf8_lossy(&f[1..]).into_owned());
            return Err(format!("server error: {msg:?}"));
        }
        Ok((head[0], body))
    }

    /// Reads an Authentication message: (code, rest).
    fn read_auth(&mut self) -> Result<(i32, Vec<u8>)> {
        let (tag, body) = self.read()?;
        if tag != b'R' {
            return Err(format!("expected R, got {}", tag as char));
        }
        let code = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        Ok((code, body[4..].to_vec()))
    }

    fn finish_login(mut self) -> Result<Conn> {
        loop {
            let (tag, _) = self.read()?;
            if tag == b'Z' {
                return Ok(self);
            }
        }
    }

    fn query_one(&mut self, sql: &str) -> Result<Option<String>> {
        let mut body = sql.as_bytes().to_vec();
        body.push(0);
        self.write_raw(Some(b'Q'), &body)?;
        let mut value = None;
        loop {
            let (tag, body) = self.read()?;
            match tag {
                b'D' => {
                    let len = i32::from_be_bytes([body[2], body[3], body[4], body[5]]);
                    if len >= 0 {
                        value = Some(String::from_utf8_lossy(&body[6..6 + len as usize]).into());
                    }
                }
                b'Z' => return Ok(value),
                _ => {}
            }
        }
    }
}

fn scram_login(user: &str, mut client: ScramClient) -> Result<()> {
    let mut conn = Conn::startup(user)?;
    let (code, mechs) = conn.read_auth()?;
    if code != 10 || !mechs.starts_with(SCRAM_SHA_256.as_bytes()) {
        return Err(format!("expected AuthenticationSASL, got {code}"));
    }
    let first = client.client_first();
    let mut body = SCRAM_SHA_256.as_bytes().to_vec();
    body.push(0);
    body.extend_from_slice(&(first.len() as i32).to_be_bytes());
    body.extend_from_slice(&first);
    conn.write_raw(Some(b'p'), &body)?;
    let (code, server_first) = conn.read_auth()?;
    assert_eq!(code, 11);
    let client_final = client
        .handle_server_first(&server_first)
        .map_err(|e| e.to_string())?;
    conn.write_raw(Some(b'p'), &client_final)?;
    let (code, server_final) = conn.read_auth()?;
    assert_eq!(code, 12);
    client
        .handle_server_final(&server_final)
        .map_err(|e| e.to_string())?;
    let (code, _) = conn.read_auth()?;
    assert_eq!(code, 0);
    conn.finish_login().map(drop)
}

fn setup() -> Result<(Secret, Secret)> {
    let mut admin = Conn::startup("postgres")?;
    let (code, _) = admin.read_auth()?;
    assert_eq!(code, 0, "superuser postgres must be trusted");
    let mut admin = admin.finish_login()?;
    for sql in [
        "DROP ROLE IF EXISTS sluice_auth_scram",
        "DROP ROLE IF EXISTS sluice_auth_md5",
        "SET password_encryption = 'scram-sha-256'",
        "CREATE ROLE sluice_auth_scram LOGIN PASSWORD 'pw'",
        "SET password_encryption = 'md5'",
        "CREATE ROLE sluice_auth_md5 LOGIN PASSWORD 'secret'",
    ] {
        admin.query_one(sql)?;
    }
    let get = |admin: &mut Conn, role: &str| -> Result<Secret> {
        let text = admin
            .query_one(&format!(
                "SELECT rolpassword FROM pg_authid WHERE rolname = '{role}'"
            ))?
            .ok_or("no rolpassword")?;
        Secret::parse(&text).map_err(|e| e.to_string())
    };
    Ok((
        get(&mut admin, "sluice_auth_scram")?,
        get(&mut admin, "sluice_auth_md5")?,
    ))
}

#[test]
#[ignore = "needs SLUICE_AUTH_TEST_PG=host:port of a throwaway PostgreSQL (see file header)"]
fn against_real_postgres() {
    let (scram_secret, md5_secret) = setup().expect("setup");
    let Secret::Scram(verifier) = &scram_secret else {
        panic!("expected a SCRAM verifier, got {scram_secret:?}");
    };
    assert!(verify_plain_password(
        &scram_secret,
        "sluice_auth_scram",
        "pw"
    ));
    assert!(verify_plain_password(
        &md5_secret,
        "sluice_auth_md5",
        "secret"
    ));

    // Password login.
    scram_login("sluice_auth_scram", ScramClient::from_password("pw")).expect("password login");
    let err = scram_login("sluice_auth_scram", ScramClient::from_password("nope"))
        .expect_err("wrong password must fail");
    assert!(err.contains("password authentication failed"), "{err}");

    // Pass-through: a client proves the password to our ScramServer, the
    // recovered ClientKey logs in to PostgreSQL.
    let mut front = ScramServer::new(&scram_secret).expect("server");
    let mut user = ScramClient::from_password("pw");
    let sf = front
        .handle_client_first(&user.client_first())
        .expect("first");
    let cf = user.handle_server_first(&sf).expect("server-first");
    let fin = front.handle_client_final(&cf).expect("proof");
    user.handle_server_final(&fin).expect("server signature");
    let key = front.client_key().expect("client key");
    scram_login(
        "sluice_auth_scram",
        ScramClient::from_client_key(key, verifier),
    )
    .expect("pass-through login");

    // MD5 from the stored secret only.
    let Secret::Md5(stored) = &md5_secret else {
        panic!("expected an MD5 secret");
    };
    let mut conn = Conn::startup("sluice_auth_md5").expect("connect");
    let (code, salt) = conn.read_auth().expect("auth request");
    assert_eq!(code, 5, "expected AuthenticationMD5Password");
    let mut body =
        md5_response_from_secret(stored, [salt[0], salt[1], salt[2], salt[3]]).into_bytes();
    body.push(0);
    conn.write_raw(Some(b'p'), &body).expect("send");
    let (code, _) = conn.read_auth().expect("auth ok");
    assert_eq!(code, 0);
    conn.finish_login().expect("ready");
}

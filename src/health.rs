//! `sluice health [CONFIG_FILE]`: the container HEALTHCHECK. Reads the same
//! configuration the server does (file and/or environment), connects to
//! the pooler's own listener and logs in to the admin console: over the
//! unix socket as the pooler's own OS user (`pgbouncer`, no password), or
//! over TCP where the console lets anyone in (auth_type=any), then runs
//! `SHOW VERSION`. Where a login needs a password it does not have, the
//! pooler answering the startup packet with an authentication request
//! counts as healthy. Exit 0 healthy, 1 not.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use bytes::BytesMut;
use sluice_config::Config;
use sluice_protocol::backend::{self, AuthRequest};
use sluice_protocol::builders;

const TIMEOUT: Duration = Duration::from_secs(5);

trait Conn: Read + Write {}
impl<T: Read + Write> Conn for T {}

pub fn run(config: &Config) -> ExitCode {
    let g = &config.general;
    let mut tried = Vec::new();
    if !g.unix_socket_dir.is_empty() {
        let path = Path::new(&g.unix_socket_dir).join(format!(".s.PGSQL.{}", g.listen_port));
        match UnixStream::connect(&path) {
            Ok(s) => {
                let _ = s.set_read_timeout(Some(TIMEOUT));
                let _ = s.set_write_timeout(Some(TIMEOUT));
                return report(check(s), &path.display().to_string());
            }
            Err(e) => tried.push(format!("{}: {e}", path.display())),
        }
    }
    let host = match g.listen_addr.first().map(String::as_str) {
        None | Some("*") | Some("0.0.0.0") | Some("") => "127.0.0.1",
        Some("::") => "::1",
        Some(h) => h,
    };
    let addr: Option<SocketAddr> = (host, g.listen_port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next());
    if let Some(addr) = addr {
        match TcpStream::connect_timeout(&addr, TIMEOUT) {
            Ok(s) => {
                let _ = s.set_read_timeout(Some(TIMEOUT));
                let _ = s.set_write_timeout(Some(TIMEOUT));
                return report(check(s), &addr.to_string());
            }
            Err(e) => tried.push(format!("{addr}: {e}")),
        }
    } else {
        tried.push(format!("{host}:{}: cannot resolve", g.listen_port));
    }
    println!("unhealthy: cannot connect ({})", tried.join("; "));
    ExitCode::from(1)
}

fn report(result: Result<String, String>, addr: &str) -> ExitCode {
    match result {
        Ok(what) => {
            println!("healthy: {what} ({addr})");
            ExitCode::SUCCESS
        }
        Err(why) => {
            println!("unhealthy: {why} ({addr})");
            ExitCode::from(1)
        }
    }
}

/// Startup as `pgbouncer` to the console, then SHOW VERSION if let in.
fn check(mut s: impl Conn) -> Result<String, String> {
    let packet = builders::startup_message(&[
        ("user", "pgbouncer"),
        ("database", "pgbouncer"),
        ("application_name", "sluice-health"),
    ]);
    s.write_all(&packet).map_err(|e| format!("write: {e}"))?;
    let (tag, body) = read_message(&mut s)?;
    match tag {
        b'R' if matches!(backend::auth_request(&body), Ok(AuthRequest::Ok)) => {}
        b'R' => {
            // A password is wanted: the pooler answers logins.
            let _ = s.write_all(&terminate());
            return Ok("answers logins (the console wants a password)".into());
        }
        b'E' => {
            let (code, message) = error_fields(&body);
            // Shutting down or not accepting: not healthy.
            return if matches!(code.as_str(), "57P01" | "57P02" | "57P03") {
                Err(format!("{code} {message}"))
            } else {
                Ok(format!("answers logins ({message})"))
            };
        }
        _ => return Err(format!("unexpected message '{}'", tag as char)),
    }
    // Logged in: wait for ReadyForQuery, then SHOW VERSION.
    loop {
        let (tag, body) = read_message(&mut s)?;
        match tag {
            b'Z' => break,
            b'E' => return Err(error_fields(&body).1),
            _ => {}
        }
    }
    let mut q = BytesMut::new();
    builders::put_query(&mut q, "SHOW VERSION");
    s.write_all(&q).map_err(|e| format!("write: {e}"))?;
    let mut version = None;
    loop {
        let (tag, body) = read_message(&mut s)?;
        match tag {
            b'D' => {
                version = backend::data_row(&body)
                    .ok()
                    .and_then(|r| r.into_iter().next().flatten())
            }
            b'E' => return Err(error_fields(&body).1),
            b'Z' => break,
            _ => {}
        }
    }
    let _ = s.write_all(&terminate());
    version
        .map(|v| format!("console answers SHOW VERSION: {v}"))
        .ok_or_else(|| "SHOW VERSION returned no row".into())
}

fn read_message(s: &mut impl Read) -> Result<(u8, Vec<u8>), String> {
    let mut head = [0u8; 5];
    s.read_exact(&mut head).map_err(|e| format!("read: {e}"))?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if !(4..=1 << 20).contains(&len) {
        return Err(format!("bad message length {len}"));
    }
    let mut body = vec![0u8; len - 4];
    s.read_exact(&mut body).map_err(|e| format!("read: {e}"))?;
    Ok((head[0], body))
}

/// (SQLSTATE, message) of an ErrorResponse body.
fn error_fields(body: &[u8]) -> (String, String) {
    match backend::error_fields(body) {
        Ok(f) => (f.code, f.message),
        Err(e) => (String::new(), format!("malformed ErrorResponse: {e}")),
    }
}

fn terminate() -> BytesMut {
    let mut out = BytesMut::new();
    builders::put_terminate(&mut out);
    out
}

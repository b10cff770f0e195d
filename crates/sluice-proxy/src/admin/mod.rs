//! The admin console: the virtual database `pgbouncer` (alias `sluice`)
//! that speaks PgBouncer's SHOW commands and control commands over the
//! simple query protocol. Who may log in is decided here; `show.rs`
//! answers SHOW, `control.rs` the commands that change things.

mod command;
mod control;
mod resultset;
pub(crate) mod show;
mod show_sockets;
pub(crate) mod show_stats;
mod time;

use std::sync::Arc;

use bytes::BytesMut;
use sluice_config::{AuthType, Config};
use sluice_protocol::startup::StartupParams;
use sluice_protocol::{builders, frontend};

use crate::client::io::ClientIo;
use crate::client::stream::ClientStream;
use crate::clients::ClientInfo;
use crate::errors::ClientError;
use crate::shared::Shared;
use crate::stats::Totals;

pub use command::{parse, Command};
pub use resultset::{ColType, ResultSet, Value};

/// The names clients use for the console.
pub fn is_admin_database(name: &str) -> bool {
    name == "pgbouncer" || name == "sluice"
}

/// A user logged in to the console.
#[derive(Debug, Clone)]
pub struct AdminUser {
    pub user: String,
    /// admin_users (or the pooler's own OS user over the unix socket):
    /// every command. Otherwise SHOW only (stats_users).
    pub is_admin: bool,
}

/// What PgBouncer's console reports as its version; exporters parse
/// `PgBouncer X.Y.Z` out of SHOW VERSION.
pub fn version_string() -> String {
    format!(
        "PgBouncer 1.25.0 (compatible; Sluice {})",
        env!("CARGO_PKG_VERSION")
    )
}

/// Checks who may use the console, as PgBouncer does: the pooler's own OS
/// user over the unix socket as `pgbouncer` without a password; with
/// auth_type=any anyone (admin_users get every command, others SHOW);
/// otherwise admin_users and stats_users after the usual authentication.
/// Then sends the welcome.
pub async fn login(
    io: &mut ClientIo<ClientStream>,
    shared: &Arc<Shared>,
    cfg: &Config,
    user: &str,
    _startup: &StartupParams,
) -> Result<AdminUser, ClientError> {
    let g = &cfg.general;
    let listed = |l: &[String]| l.iter().any(|u| u == user);
    let own_user =
        user == "pgbouncer" && io.stream.peer_uid() == Some(unsafe_getuid()) && io.stream.is_unix();
    let in_admin = listed(&g.admin_users);
    let in_stats = listed(&g.stats_users);
    if !own_user && g.auth_type != AuthType::Any {
        if !in_admin && !in_stats {
            return Err(ClientError::fatal("08P01", "not allowed"));
        }
        let auth_type = match g.auth_type {
            AuthType::Hba => crate::client::hba_method(shared, io, "pgbouncer", user)?,
            other => other,
        };
        let users = shared.userlist();
        let tls = shared.tls();
        let peer_cn = io.stream.peer_common_name();
        let channel_binding = io
            .stream
            .is_tls()
            .then(|| tls.client.server_end_point().map(<[u8]>::to_vec))
            .flatten();
        crate::client::auth::authenticate(
            io,
            crate::client::auth::AuthRequest {
                auth_type,
                user,
                secret: users.get(user),
                peer_cn: peer_cn.as_deref(),
                channel_binding,
                pam_confdir: g.auth_pam_confdir.clone(),
                verifiers: &shared.verifiers,
            },
        )
        .await?;
    }
    if own_user && g.log_connections {
        tracing::info!("pgbouncer access from unix socket");
    }
    builders::put_auth_ok(&mut io.wbuf);
    for (k, v) in [
        ("server_version", format!("{}/bouncer", "1.25.0")),
        ("server_encoding", "UTF8".to_string()),
        ("client_encoding", "UTF8".to_string()),
        ("DateStyle", "ISO".to_string()),
        ("TimeZone", "GMT".to_string()),
        ("standard_conforming_strings", "on".to_string()),
        ("integer_datetimes", "on".to_string()),
        ("is_superuser", "off".to_string()),
    ] {
        builders::put_parameter_status(&mut io.wbuf, k, &v);
    }
    builders::put_backend_key_data(&mut io.wbuf, 0, 0);
    builders::put_ready_for_query(&mut io.wbuf, b'I');
    io.flush().await?;
    Ok(AdminUser {
        user: user.to_string(),
        is_admin: own_user || in_admin,
    })
}

fn unsafe_getuid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// Serves console commands until the client leaves.
pub async fn serve(
    mut io: ClientIo<ClientStream>,
    shared: Arc<Shared>,
    admin: AdminUser,
    info: Arc<ClientInfo>,
) {
    let stats = shared.stats.db(show::ADMIN_DB);
    stats.add(&Totals {
        client_login_count: 1,
        ..Totals::default()
    });
    loop {
        let msg = tokio::select! {
            m = io.read_message() => m,
            _ = std::future::poll_fn(|cx| info.poll_killed(cx)) => {
                Err(ClientError::fatal("08P01", info.kill_reason()))
            }
        };
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                io.send_error(&e).await;
                return;
            }
        };
        info.note_request();
        let r = match msg.tag() {
            frontend::TERMINATE => return,
            frontend::QUERY => match frontend::query_text(msg.body()) {
                Ok(sql) => {
                    let sql = sql.to_string();
                    let (out_before, start) = (io.wbuf.len(), std::time::Instant::now());
                    run_query(&mut io.wbuf, &shared, &admin, &sql).await;
                    // The console's own work shows in SHOW STATS, as in PgBouncer.
                    let us = start.elapsed().as_micros() as u64;
                    stats.add(&Totals {
                        xact_count: 1,
                        query_count: 1,
                        received: msg.raw().len() as u64,
                        sent: (io.wbuf.len() - out_before) as u64,
                        xact_time: us,
                        query_time: us,
                        ..Totals::default()
                    });
                    Ok(())
                }
                Err(e) => Err(ClientError::from(e)),
            },
            frontend::PARSE
            | frontend::BIND
            | frontend::EXECUTE
            | frontend::DESCRIBE
            | frontend::SYNC
            | frontend::FLUSH
            | frontend::CLOSE => {
                builders::put_error(
                    &mut io.wbuf,
                    "ERROR",
                    "08P01",
                    "extended query protocol not supported by admin console",
                );
                Err(ClientError::fatal("08P01", "bad packet"))
            }
            other => {
                builders::put_error(
                    &mut io.wbuf,
                    "ERROR",
                    "08P01",
                    &format!("unsupported packet type for admin console: {other}"),
                );
                Err(ClientError::fatal("08P01", "bad packet"))
            }
        };
        if let Err(e) = r {
            io.send_error(&e).await;
            return;
        }
        if io.flush().await.is_err() {
            return;
        }
    }
}

/// Runs one Query message (which may hold several `;`-separated commands)
/// and queues the replies, ending with ReadyForQuery.
async fn run_query(out: &mut BytesMut, shared: &Arc<Shared>, admin: &AdminUser, sql: &str) {
    let parts: Vec<&str> = sql.split(';').filter(|p| !p.trim().is_empty()).collect();
    if parts.is_empty() {
        builders::put_message(out, b'I', |_| {});
    }
    for part in parts {
        if let Err(e) = run_command(out, shared, admin, part).await {
            let (code, msg) = e;
            builders::put_error(out, "ERROR", code, &msg);
            tracing::warn!(user = %admin.user, "console: {msg}");
            break;
        }
    }
    builders::put_ready_for_query(out, b'I');
}

/// An error for the console user: (SQLSTATE, message).
pub(crate) type AdminError = (&'static str, String);

pub(crate) fn admin_error(msg: impl Into<String>) -> AdminError {
    ("08P01", msg.into())
}

async fn run_command(
    out: &mut BytesMut,
    shared: &Arc<Shared>,
    admin: &AdminUser,
    text: &str,
) -> Result<(), AdminError> {
    let cmd = parse(text)
        .map_err(|_| admin_error(format!("invalid command '{}', use SHOW HELP;", text.trim())))?;
    match cmd {
        Command::Empty => {
            builders::put_message(out, b'I', |_| {});
            Ok(())
        }
        Command::Show(what) => show::show(out, shared, admin, &what, text),
        other => {
            if let Command::Set { key, .. } = &other {
                if show::is_fake_parameter(key) {
                    builders::put_notice(out, "NOTICE", "00000", "SET ignored");
                    resultset::put_command_complete(out, "SET");
                    return Ok(());
                }
            }
            if !admin.is_admin {
                return Err(admin_error("admin access needed"));
            }
            control::run(out, shared, other).await
        }
    }
}

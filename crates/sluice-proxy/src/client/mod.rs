//! One client connection from accept to close: startup, login checks,
//! authentication, the welcome, then the session loop.

pub mod auth;
pub mod auth_query;
pub mod expect;
pub mod io;
pub mod params;
pub mod session;
pub mod spare;
pub mod startup;
pub mod statements;
pub mod stream;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use sluice_auth::{HbaConnType, HbaMethod, Secret};
use sluice_config::{AuthType, TlsMode};
use sluice_pool::ServerSecret;
use sluice_protocol::builders;
use tokio::io::AsyncWriteExt;

use self::io::ClientIo;
use self::params::ClientParams;
use self::session::{Session, SessionSetup, Timeouts};
use self::startup::{read_startup, Handshake};
use self::stream::ClientStream;
use crate::clients::NewClient;
use crate::errors::ClientError;
use crate::shared::{Shared, TlsState};

/// Counts a client connection for max_client_conn while it lives.
struct ClientSlot(Arc<Shared>);

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.0.clients.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves one accepted connection to the end.
pub async fn serve(stream: ClientStream, peer: String, shared: Arc<Shared>) {
    let count = shared.clients.fetch_add(1, Ordering::Relaxed) + 1;
    let _slot = ClientSlot(shared.clone());
    let cfg = shared.config();
    let g = &cfg.general;
    let mut io = ClientIo::new(stream, g.pkt_buf, g.max_packet_size);
    let id = shared.next_client_id.fetch_add(1, Ordering::Relaxed);
    let started = std::time::Instant::now();
    let mut who = Who {
        id,
        ..Who::default()
    };
    // Boxed: the login's state is large and only needed until it is done;
    // inline it would stay part of every client task for its whole life.
    let login = Box::pin(login(&mut io, &shared, &peer, count, &mut who));
    let r = if g.client_login_timeout.is_zero() {
        login.await
    } else {
        match tokio::time::timeout(g.client_login_timeout, login).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::fatal("08P01", "client_login_timeout")),
        }
    };
    let info = match r {
        Ok(Some(Login::Pool(i))) => *i,
        Ok(Some(Login::Admin(a))) => {
            if g.log_connections {
                tracing::info!(
                    "{} login attempt: db=pgbouncer user={} tls={}",
                    who.prefix(&peer),
                    a.user,
                    tls_text(&io)
                );
            }
            let reg = shared.registry.register(
                id,
                new_client(
                    &io,
                    &peer,
                    a.user.clone(),
                    "pgbouncer".into(),
                    None,
                    String::new(),
                ),
            );
            Box::pin(crate::admin::serve(io, shared.clone(), a, reg.info.clone())).await;
            if g.log_disconnections {
                tracing::info!(
                    "{} closing because: client close request (age={}s)",
                    who.prefix(&peer),
                    started.elapsed().as_secs()
                );
            }
            return;
        }
        Ok(None) => return,
        Err(e) => {
            if g.log_pooler_errors && !matches!(e, ClientError::Gone(_)) {
                tracing::warn!("{} pooler error: {e}", who.prefix(&peer));
            }
            io.send_error(&e).await;
            return;
        }
    };
    let log_disc = g.log_disconnections;
    let app = info
        .params
        .tracked
        .get("application_name")
        .cloned()
        .unwrap_or_default();
    let reg = shared.registry.register(
        id,
        new_client(
            &io,
            &peer,
            info.user.clone(),
            info.database.clone(),
            Some(info.route.pool.key.clone()),
            app,
        ),
    );
    shared.stats.db(&info.database).add(&crate::stats::Totals {
        client_login_count: 1,
        ..Default::default()
    });
    let mut session = Session::new(
        io,
        SessionSetup {
            shared: shared.clone(),
            route: info.route,
            params: info.params,
            id,
            cancel: info.cancel,
            timeouts: info.timeouts,
            peer: peer.clone(),
            user: info.user,
            database: info.database,
            info: reg.info.clone(),
        },
    );
    let r = session.run().await;
    if log_disc {
        let reason = match r {
            Ok(()) => "client close request".to_string(),
            Err(ClientError::Gone(_)) => "client unexpected eof".to_string(),
            Err(e) => e.to_string(),
        };
        tracing::info!(
            "{} closing because: {reason} (age={}s)",
            who.prefix(&peer),
            started.elapsed().as_secs()
        );
    }
}

/// Who a client said it is, as far as the login got: for log lines in
/// PgBouncer's shape, `C-0x…: db/user@addr:port …`.
#[derive(Default)]
struct Who {
    id: u64,
    user: Option<String>,
    database: Option<String>,
}

impl Who {
    fn prefix(&self, peer: &str) -> String {
        format!(
            "C-{}: {}/{}@{peer}",
            crate::clients::client_ptr(self.id),
            self.database.as_deref().unwrap_or("(nodb)"),
            self.user.as_deref().unwrap_or("(nouser)"),
        )
    }
}

fn tls_text(io: &ClientIo<ClientStream>) -> String {
    match io.stream.tls_description() {
        t if t.is_empty() => "no".to_string(),
        t => t,
    }
}

/// The registry entry of a client that just logged in.
fn new_client(
    io: &ClientIo<ClientStream>,
    peer: &str,
    user: String,
    database: String,
    pool: Option<sluice_pool::PoolKey>,
    application_name: String,
) -> NewClient {
    let (addr, port) = match peer.rsplit_once(':') {
        Some((a, p)) => (
            a.trim_start_matches('[').trim_end_matches(']').to_string(),
            p.parse().unwrap_or(0),
        ),
        None => (peer.to_string(), 0),
    };
    let (local_addr, local_port) = io.stream.local_endpoint();
    NewClient {
        user,
        database,
        pool,
        addr,
        port,
        local_addr,
        local_port,
        tls: io.stream.tls_description(),
        application_name,
    }
}

/// Where a login leads: a pool, or the admin console.
enum Login {
    Pool(Box<LoginInfo>),
    Admin(crate::admin::AdminUser),
}

/// What a successful login hands to the session.
struct LoginInfo {
    route: crate::pools::Route,
    params: ClientParams,
    cancel: crate::cancel::CancelHandle,
    timeouts: Timeouts,
    user: String,
    database: String,
}

/// Answers an SSLRequest: `S` and a TLS handshake when client TLS is on
/// (TCP only), `N` otherwise.
async fn answer_ssl_request(
    io: &mut ClientIo<ClientStream>,
    tls: &TlsState,
) -> Result<(), ClientError> {
    let acceptor = match (&tls.client.acceptor, &io.stream) {
        (Some(a), ClientStream::Tcp(_)) => a.clone(),
        _ => {
            io.stream.write_all(b"N").await?;
            return Ok(());
        }
    };
    io.stream.write_all(b"S").await?;
    let ClientStream::Tcp(tcp) = std::mem::replace(&mut io.stream, ClientStream::Closed) else {
        return Err(ClientError::protocol_violation("bad startup sequence"));
    };
    let s = acceptor.accept(tcp).await?;
    io.stream = ClientStream::Tls(Box::new(s));
    Ok(())
}

/// PostgreSQL 17's direct TLS (`sslnegotiation=direct`): the first byte is
/// a TLS handshake record instead of a packet length.
async fn direct_tls(io: &mut ClientIo<ClientStream>, tls: &TlsState) -> Result<(), ClientError> {
    let (Some(acceptor), ClientStream::Tcp(tcp)) = (&tls.client.acceptor, &io.stream) else {
        return Ok(());
    };
    let mut first = [0u8; 1];
    if tcp.peek(&mut first).await? == 1 && first[0] == 0x16 {
        let acceptor = acceptor.clone();
        let ClientStream::Tcp(tcp) = std::mem::replace(&mut io.stream, ClientStream::Closed) else {
            return Err(ClientError::protocol_violation("bad startup sequence"));
        };
        let s = acceptor.accept(tcp).await?;
        // As PostgreSQL 17: direct TLS only with ALPN "postgresql", so
        // another protocol's client cannot be confused into talking to us.
        if s.get_ref().1.alpn_protocol() != Some(b"postgresql".as_slice()) {
            return Err(ClientError::protocol_violation(
                "direct TLS connection without ALPN \"postgresql\"",
            ));
        }
        io.stream = ClientStream::Tls(Box::new(s));
    }
    Ok(())
}

/// Startup and authentication. `None` when the connection was a cancel.
async fn login(
    io: &mut ClientIo<ClientStream>,
    shared: &Arc<Shared>,
    peer: &str,
    count: usize,
    who: &mut Who,
) -> Result<Option<Login>, ClientError> {
    let tls = shared.tls();
    direct_tls(io, &tls).await?;
    let startup = loop {
        match read_startup(io).await? {
            Handshake::Cancel { pid, key } => {
                shared.cancel.cancel(pid, key).await;
                return Ok(None);
            }
            Handshake::SslRequest => answer_ssl_request(io, &tls).await?,
            Handshake::Login(p) => break p,
        }
    };
    // A newer 3.x minor version or `_pq_.` protocol options: say first
    // what Sluice speaks (3.0, none of the options), as PostgreSQL does.
    let options: Vec<&str> = startup
        .params
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| k.starts_with("_pq_."))
        .collect();
    if startup.minor_version > 0 || !options.is_empty() {
        builders::put_negotiate_protocol_version(&mut io.wbuf, 0, &options);
    }
    let cfg = shared.config();
    let g = &cfg.general;
    let tls_required = matches!(
        tls.client.mode,
        TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull
    );
    if tls_required && !io.stream.is_tls() && !io.stream.is_unix() {
        return Err(ClientError::fatal("08P01", "SSL required"));
    }
    if shared.is_shutting_down() {
        return Err(ClientError::fatal("08P01", "pooler is shutting down"));
    }
    if count > g.max_client_conn {
        return Err(ClientError::fatal(
            "08P01",
            "no more connections allowed (max_client_conn)",
        ));
    }
    let user = match startup.get("user") {
        Some(u) if !u.is_empty() => u.to_string(),
        _ => return Err(ClientError::fatal("08P01", "no username supplied")),
    };
    let database = startup
        .get("database")
        .filter(|d| !d.is_empty())
        .unwrap_or(&user)
        .to_string();
    who.user = Some(user.clone());
    who.database = Some(database.clone());
    if user.len() >= 128 {
        return Err(ClientError::fatal("08P01", "username too long"));
    }
    if crate::admin::is_admin_database(&database) {
        let a = crate::admin::login(io, shared, &cfg, &user, &startup).await?;
        return Ok(Some(Login::Admin(a)));
    }
    let Some(db) = cfg.database(&database) else {
        return Err(ClientError::fatal(
            "08P01",
            format!("no such database: {database}"),
        ));
    };
    if shared.pause.is_disabled(&database) {
        return Err(ClientError::fatal(
            "08P01",
            format!("database \"{database}\" is disabled"),
        ));
    }
    if g.auth_type == AuthType::Any && db.user.is_none() {
        tracing::error!("auth_type=any requires a forced user (user= in [databases] {database})");
        return Err(ClientError::fatal("08P01", "bouncer config error"));
    }
    let mut params = ClientParams::from_startup(&startup, &g.ignore_startup_parameters)?;
    if g.application_name_add_host {
        let app = params
            .tracked
            .get_or_insert_with("application_name", String::new);
        *app = format!("{app} - {peer}");
        params.fingerprint = 0;
    }

    let auth_type = match g.auth_type {
        AuthType::Hba => hba_method(shared, io, &database, &user)?,
        other => other,
    };
    let users = shared.userlist();
    let timeouts = timeouts(&cfg, &user, db);
    let mut secret: Option<Secret> = users.get(&user).cloned();
    let needs_secret = matches!(
        auth_type,
        AuthType::Plain | AuthType::Md5 | AuthType::ScramSha256
    );
    let mut from_auth_query = false;
    if secret.is_none() && needs_secret {
        if let Some(auth_user) = auth_query::auth_user(&cfg, db) {
            secret = auth_query::fetch_secret(
                shared,
                &cfg,
                db,
                &database,
                auth_user,
                &user,
                timeouts.query_wait_timeout,
            )
            .await?;
            from_auth_query = secret.is_some();
        }
    }
    let peer_cn = io.stream.peer_common_name();
    let channel_binding = io
        .stream
        .is_tls()
        .then(|| tls.client.server_end_point().map(<[u8]>::to_vec))
        .flatten();
    let outcome = auth::authenticate(
        io,
        auth::AuthRequest {
            auth_type,
            user: &user,
            secret: secret.as_ref(),
            peer_cn: peer_cn.as_deref(),
            channel_binding,
            pam_confdir: g.auth_pam_confdir.clone(),
            verifiers: &shared.verifiers,
        },
    )
    .await?;

    let route = shared
        .pools
        .route(&cfg, &users, &database, &user, &tls.server)?;
    if from_auth_query && db.user.is_none() {
        // The server login uses what auth_query found (md5, or SCRAM with
        // the client's proof below).
        if let Some(found) = &secret {
            route.pool.update_login(|l| {
                let keep_key = matches!(
                    (&l.secret, found),
                    (Some(ServerSecret::Scram { secret: had, .. }), Secret::Scram(new))
                        if had.stored_key == new.stored_key
                );
                if !keep_key {
                    l.secret = Some(crate::pools::server_secret(found));
                }
            });
        }
    }
    if let (Some(pw), None) = (&outcome.password, &db.user) {
        // PAM: the server login uses the password the client proved.
        route.pool.update_login(|l| {
            if !matches!(&l.secret, Some(ServerSecret::Plain(p)) if p == pw) {
                l.secret = Some(ServerSecret::Plain(pw.clone()));
            }
        });
    }
    if let (Some(key), Some(Secret::Scram(s))) = (outcome.scram_client_key, secret.as_ref()) {
        if db.user.is_none() {
            route.pool.update_login(|l| {
                if let Some(ServerSecret::Scram { secret, client_key }) = &mut l.secret {
                    if secret.stored_key == s.stored_key {
                        *client_key = Some(key);
                    }
                }
            });
        }
    }

    // The server's parameters to show the client: from the pool's last
    // login, or from a fresh server. Extra startup settings are tried on a
    // server now, so a bad one fails the login as it would on PostgreSQL.
    let server_params = match route.pool.server_params() {
        Some(p) if params.extra.is_empty() => p,
        _ => {
            let mut srv = route
                .pool
                .acquire(timeouts.query_wait_timeout)
                .await
                .map_err(ClientError::from_pool)?;
            if let Some(sql) = params.sync_sql(&mut srv) {
                if let Err(e) = srv.run_silent(&sql).await {
                    // Its recorded settings no longer match; do not reuse it.
                    srv.close();
                    return Err(ClientError::from_pool(e));
                }
            }
            srv.release();
            route
                .pool
                .server_params()
                .ok_or_else(|| ClientError::fatal("08P01", "server login failed"))?
        }
    };
    let welcome = params.welcome(&server_params);
    builders::put_auth_ok(&mut io.wbuf);
    for (k, v) in &welcome {
        builders::put_parameter_status(&mut io.wbuf, k, v);
    }
    let cancel = shared.cancel.register();
    builders::put_backend_key_data(&mut io.wbuf, cancel.slot.pid, cancel.slot.key);
    builders::put_ready_for_query(&mut io.wbuf, b'I');
    io.flush().await?;
    if g.log_connections {
        tracing::info!(
            "{} login attempt: db={database} user={user} tls={}",
            who.prefix(peer),
            tls_text(io)
        );
    }
    Ok(Some(Login::Pool(Box::new(LoginInfo {
        route,
        params,
        cancel,
        timeouts,
        user,
        database,
    }))))
}

/// [users] values first, then the database entry's, then [pgbouncer].
/// auth_type=hba: the first matching rule of auth_hba_file decides. cert
/// and peer are checked here (with ident maps); the password methods are
/// returned for the usual exchange.
pub(crate) fn hba_method(
    shared: &Shared,
    io: &ClientIo<ClientStream>,
    database: &str,
    user: &str,
) -> Result<AuthType, ClientError> {
    let hba = shared
        .hba()
        .ok_or_else(|| ClientError::fatal("08P01", "bouncer config error"))?;
    let conn = if io.stream.is_unix() {
        HbaConnType::Local
    } else {
        HbaConnType::Host {
            ssl: io.stream.is_tls(),
        }
    };
    let rule = hba
        .lookup(conn, io.stream.peer_ip(), database, user)
        .ok_or_else(|| ClientError::fatal("28000", "no authentication method is found"))?;
    Ok(match rule.method {
        HbaMethod::Trust => AuthType::Trust,
        HbaMethod::Reject => return Err(ClientError::fatal("28000", "login rejected")),
        HbaMethod::Md5 => AuthType::Md5,
        HbaMethod::Password => AuthType::Plain,
        HbaMethod::ScramSha256 => AuthType::ScramSha256,
        HbaMethod::Cert => {
            let cn = io.stream.peer_common_name();
            if cn.is_none() || !hba.system_user_allowed(rule, user, |n| cn.as_deref() == Some(n)) {
                return Err(ClientError::fatal(
                    "28000",
                    "certificate authentication failed",
                ));
            }
            AuthType::Any
        }
        HbaMethod::Peer => {
            let os_user = io.stream.peer_os_user();
            if os_user.is_none()
                || !hba.system_user_allowed(rule, user, |n| os_user.as_deref() == Some(n))
            {
                return Err(ClientError::fatal("28000", "unix socket login rejected"));
            }
            AuthType::Any
        }
    })
}

fn timeouts(cfg: &sluice_config::Config, user: &str, db: &sluice_config::DatabaseDef) -> Timeouts {
    let g = &cfg.general;
    let u = cfg.users.get(user);
    Timeouts {
        query_timeout: u.and_then(|u| u.query_timeout).unwrap_or(g.query_timeout),
        query_wait_timeout: u
            .and_then(|u| u.query_wait_timeout)
            .or(db.query_wait_timeout)
            .unwrap_or(g.query_wait_timeout),
        client_idle_timeout: u
            .and_then(|u| u.client_idle_timeout)
            .unwrap_or(g.client_idle_timeout),
        idle_transaction_timeout: u
            .and_then(|u| u.idle_transaction_timeout)
            .unwrap_or(g.idle_transaction_timeout),
    }
}

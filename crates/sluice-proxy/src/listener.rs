//! Listening sockets (TCP per listen_addr, and the unix socket), the accept
//! loops, and the once-a-second pool upkeep.

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sluice_config::GeneralSettings;
use tokio::net::{TcpListener, TcpStream, UnixListener};
use tokio::sync::watch;

use crate::client::stream::ClientStream;
use crate::shared::Shared;

pub struct Listeners {
    tcp: Vec<TcpListener>,
    unix: Option<(UnixListener, PathBuf)>,
    /// prometheus_listen, when set.
    metrics: Option<TcpListener>,
}

impl Listeners {
    /// Local addresses, for logs.
    pub fn describe(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .tcp
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .map(|a| a.to_string())
            .collect();
        if let Some((_, p)) = &self.unix {
            v.push(p.display().to_string());
        }
        if let Some(a) = self.metrics.as_ref().and_then(|l| l.local_addr().ok()) {
            v.push(format!("metrics on http://{a}/metrics"));
        }
        v
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        if let Some((_, p)) = &self.unix {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn tcp_listener(addr: SocketAddr, v6only: bool) -> io::Result<TcpListener> {
    let domain = socket2::Domain::for_address(addr);
    let s = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(v6only)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    TcpListener::from_std(s.into())
}

/// Opens every configured listener; fails if none can be opened.
pub fn bind(g: &GeneralSettings) -> io::Result<Listeners> {
    // The unix socket first: once TCP accepts, everything is ready (a
    // client or a test that sees the TCP port open may go to the socket).
    let unix = if g.unix_socket_dir.is_empty() {
        None
    } else {
        let path = PathBuf::from(&g.unix_socket_dir).join(format!(".s.PGSQL.{}", g.listen_port));
        // A stale socket left by a crash; a live one belongs to someone else.
        if path.exists() {
            if std::os::unix::net::UnixStream::connect(&path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("unix socket {} is in use", path.display()),
                ));
            }
            let _ = std::fs::remove_file(&path);
        }
        let l = UnixListener::bind(&path).map_err(|e| {
            io::Error::new(e.kind(), format!("unix socket {}: {e}", path.display()))
        })?;
        let _ =
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(g.unix_socket_mode));
        Some((l, path))
    };
    // Dropped on any error below, which removes the socket file again.
    let mut listeners = Listeners {
        tcp: Vec::new(),
        unix,
        metrics: None,
    };
    if let Some(addr) = g
        .prometheus_listen
        .as_deref()
        .filter(|a| !a.trim().is_empty())
    {
        let sa = std::net::ToSocketAddrs::to_socket_addrs(addr.trim())
            .map_err(|e| io::Error::new(e.kind(), format!("prometheus_listen {addr}: {e}")))?
            .next()
            .ok_or_else(|| io::Error::other(format!("prometheus_listen {addr}: no address")))?;
        listeners.metrics = Some(
            tcp_listener(sa, true)
                .map_err(|e| io::Error::new(e.kind(), format!("prometheus_listen {sa}: {e}")))?,
        );
    }
    let tcp = &mut listeners.tcp;
    for a in &g.listen_addr {
        let a = a.trim();
        if a.is_empty() {
            continue;
        }
        if a == "*" {
            tcp.push(tcp_listener(
                SocketAddr::from(([0, 0, 0, 0], g.listen_port)),
                false,
            )?);
            match tcp_listener(SocketAddr::from(([0u16; 8], g.listen_port)), true) {
                Ok(l) => tcp.push(l),
                Err(e) => tracing::debug!("no IPv6 listener: {e}"),
            }
            continue;
        }
        let host = a.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> =
            std::net::ToSocketAddrs::to_socket_addrs(&(host, g.listen_port))
                .map_err(|e| io::Error::new(e.kind(), format!("listen_addr {a}: {e}")))?
                .collect();
        for sa in addrs {
            tcp.push(
                tcp_listener(sa, true)
                    .map_err(|e| io::Error::new(e.kind(), format!("listen on {sa}: {e}")))?,
            );
        }
    }
    if listeners.tcp.is_empty() && listeners.unix.is_none() {
        return Err(io::Error::other(
            "no listen_addr and no unix_socket_dir: nothing to listen on",
        ));
    }
    Ok(listeners)
}

fn tune_tcp(s: &TcpStream, g: &GeneralSettings) {
    let _ = s.set_nodelay(true);
    if !g.tcp_keepalive {
        return;
    }
    let sock = socket2::SockRef::from(s);
    let mut ka = socket2::TcpKeepalive::new();
    if g.tcp_keepidle > 0 {
        ka = ka.with_time(Duration::from_secs(g.tcp_keepidle as u64));
    }
    if g.tcp_keepintvl > 0 {
        ka = ka.with_interval(Duration::from_secs(g.tcp_keepintvl as u64));
    }
    if g.tcp_keepcnt > 0 {
        ka = ka.with_retries(g.tcp_keepcnt);
    }
    let _ = sock.set_tcp_keepalive(&ka);
    if g.tcp_user_timeout > 0 {
        let _ = sock.set_tcp_user_timeout(Some(Duration::from_millis(g.tcp_user_timeout as u64)));
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// Accepts clients until `stop` turns true; runs pool upkeep meanwhile.
pub async fn run(shared: Arc<Shared>, listeners: Listeners, stop: watch::Receiver<bool>) {
    let mut tasks = Vec::new();
    let mut listeners = listeners;
    for l in std::mem::take(&mut listeners.tcp) {
        let shared = shared.clone();
        let mut stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = l.accept() => match r {
                        Ok((s, peer)) => {
                            tune_tcp(&s, &shared.config().general);
                            tokio::spawn(crate::client::serve(ClientStream::Tcp(s), peer.to_string(), shared.clone()));
                        }
                        Err(e) => {
                            tracing::warn!("accept: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    },
                    _ = stopped(&mut stop) => break,
                }
            }
        }));
    }
    if let Some((l, path)) = listeners.unix.take() {
        let shared = shared.clone();
        let mut stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = l.accept() => match r {
                        Ok((s, _)) => {
                            tokio::spawn(crate::client::serve(ClientStream::Unix(s), "unix".to_string(), shared.clone()));
                        }
                        Err(e) => {
                            tracing::warn!("accept: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    },
                    _ = stopped(&mut stop) => break,
                }
            }
            drop(l);
            let _ = std::fs::remove_file(&path);
        }));
    }
    let upkeep = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                for p in shared.pools.all() {
                    p.maintain().await;
                }
            }
        })
    };
    let stats = tokio::spawn(stats_periods(shared.clone()));
    let metrics = listeners
        .metrics
        .take()
        .map(|l| tokio::spawn(crate::http::serve(l, shared.clone())));
    for t in tasks {
        let _ = t.await;
    }
    upkeep.abort();
    stats.abort();
    if let Some(m) = metrics {
        m.abort();
    }
}

/// Every stats_period: the averages for SHOW STATS, and PgBouncer's
/// `stats:` log line when log_stats is on.
async fn stats_periods(shared: Arc<Shared>) {
    shared.stats.roll_period();
    loop {
        let period = shared.config().general.stats_period;
        tokio::time::sleep(period.max(Duration::from_secs(1))).await;
        let (delta, secs) = shared.stats.roll_period();
        if shared.config().general.log_stats {
            tracing::info!("{}", crate::stats::log_line(&delta, secs));
        }
    }
}

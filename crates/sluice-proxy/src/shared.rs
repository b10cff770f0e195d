//! State shared by all client tasks: the current configuration and auth
//! file, the pools, the cancel registry, client counters, shutdown state.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use sluice_auth::{Hba, HbaOptions, IdentMaps, Userlist};
use sluice_config::Config;
use sluice_tls::{ClientTls, ServerTls};

use crate::cancel::CancelRegistry;
use crate::clients::ClientRegistry;
use crate::pause::PauseGate;
use crate::pools::PoolRegistry;
use crate::stats::StatsRegistry;

/// How a SHUTDOWN (console or signal) ends the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownMode {
    /// SHUTDOWN, SIGQUIT: now.
    Immediate,
    /// SHUTDOWN WAIT_FOR_SERVERS, SIGINT: once servers are released.
    WaitForServers,
    /// SHUTDOWN WAIT_FOR_CLIENTS, SIGTERM: once clients have left.
    WaitForClients,
}

/// The TLS configurations built from client_tls_* and server_tls_*
/// (built once, and again on reload; never per connection).
#[derive(Clone)]
pub struct TlsState {
    pub client: ClientTls,
    pub server: ServerTls,
}

impl TlsState {
    pub fn disabled() -> TlsState {
        TlsState {
            client: ClientTls::disabled(),
            server: ServerTls::disabled(),
        }
    }

    /// Builds both sides; returns the warnings about settings rustls
    /// cannot honour exactly.
    pub fn from_config(config: &Config) -> Result<(TlsState, Vec<String>), sluice_tls::TlsError> {
        let (client, mut warnings) = ClientTls::from_settings(&config.general)?;
        let (server, w) = ServerTls::from_settings(&config.general)?;
        warnings.extend(w);
        Ok((TlsState { client, server }, warnings))
    }
}

/// auth_hba_file (and auth_ident_file) for auth_type=hba; `None` for the
/// other auth types.
pub fn load_hba(config: &Config) -> Result<Option<Hba>, String> {
    if config.general.auth_type != sluice_config::AuthType::Hba {
        return Ok(None);
    }
    let Some(path) = &config.general.auth_hba_file else {
        return Err("auth_type = hba needs auth_hba_file".to_string());
    };
    let maps = match &config.general.auth_ident_file {
        Some(p) => Some(IdentMaps::load(p).map_err(|e| e.to_string())?),
        None => None,
    };
    let options = HbaOptions {
        ident: maps.as_ref(),
        lenient: false,
    };
    let (hba, _) = Hba::load_with(path, options).map_err(|e| e.to_string())?;
    Ok(Some(hba))
}

pub struct Shared {
    config: RwLock<Arc<Config>>,
    userlist: RwLock<Arc<Userlist>>,
    tls: RwLock<Arc<TlsState>>,
    hba: RwLock<Option<Arc<Hba>>>,
    pub pools: PoolRegistry,
    pub cancel: Arc<CancelRegistry>,
    /// Client connections open now (logged in or logging in).
    pub clients: AtomicUsize,
    pub next_client_id: AtomicU64,
    /// Set by SIGINT/SIGTERM: no new clients.
    pub shutting_down: AtomicBool,
    /// Set by SIGINT: clients start no new transactions either.
    pub draining: AtomicBool,
    pub stats: StatsRegistry,
    /// SCRAM verifiers of plaintext auth_file passwords (see sluice-auth).
    pub verifiers: Arc<sluice_auth::ScramVerifiers>,
    pub registry: Arc<ClientRegistry>,
    pub pause: PauseGate,
    /// What RELOAD re-reads: the ini file and/or the environment.
    pub config_source: RwLock<Option<sluice_config::ConfigSource>>,
    /// Unix microseconds at start.
    pub started: u64,
    shutdown_tx: tokio::sync::watch::Sender<Option<ShutdownMode>>,
}

impl Shared {
    pub fn new(config: Config, userlist: Userlist, tls: TlsState, hba: Option<Hba>) -> Arc<Shared> {
        Arc::new(Shared {
            hba: RwLock::new(hba.map(Arc::new)),
            config: RwLock::new(Arc::new(config)),
            userlist: RwLock::new(Arc::new(userlist)),
            tls: RwLock::new(Arc::new(tls)),
            pools: PoolRegistry::default(),
            cancel: Arc::new(CancelRegistry::default()),
            clients: AtomicUsize::new(0),
            next_client_id: AtomicU64::new(1),
            shutting_down: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            stats: StatsRegistry::default(),
            verifiers: Arc::new(sluice_auth::ScramVerifiers::default()),
            registry: Arc::new(ClientRegistry::default()),
            pause: PauseGate::default(),
            config_source: RwLock::new(None),
            started: sluice_pool::info::now_micros(),
            shutdown_tx: tokio::sync::watch::channel(None).0,
        })
    }

    /// Asks the process to shut down (the console's SHUTDOWN); `main`
    /// watches [`Shared::shutdown_requests`].
    pub fn request_shutdown(&self, mode: ShutdownMode) {
        self.shutdown_tx.send_replace(Some(mode));
    }

    pub fn shutdown_requests(&self) -> tokio::sync::watch::Receiver<Option<ShutdownMode>> {
        self.shutdown_tx.subscribe()
    }

    pub fn set_config_source(&self, source: sluice_config::ConfigSource) {
        *self
            .config_source
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(source);
    }

    /// RELOAD / SIGHUP: re-reads the ini and auth files.
    pub fn reload_from_disk(&self) -> Result<(), String> {
        let source = self
            .config_source
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| "no configuration to reload".to_string())?;
        match &source.file {
            Some(path) => tracing::info!("reloading {}", path.display()),
            None => tracing::info!("reloading the configuration from the environment"),
        }
        crate::reload::reload(self, &source)?;
        tracing::info!("configuration reloaded");
        Ok(())
    }

    /// Replaces the settings (SET key = value on the console).
    pub fn replace_config(&self, config: Config) {
        let users = self.userlist();
        let tls = self.tls();
        self.pools.reconfigure(&config, &users, &tls.server);
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
    }

    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn hba(&self) -> Option<Arc<Hba>> {
        self.hba.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn tls(&self) -> Arc<TlsState> {
        self.tls.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn userlist(&self) -> Arc<Userlist> {
        self.userlist
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Installs a new configuration and auth file (RELOAD / SIGHUP); pools
    /// take the new settings for the servers they open from now on.
    pub fn reload(&self, config: Config, userlist: Userlist, tls: TlsState, hba: Option<Hba>) {
        *self.hba.write().unwrap_or_else(|e| e.into_inner()) = hba.map(Arc::new);
        self.pools.reconfigure(&config, &userlist, &tls.server);
        *self.tls.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(tls);
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
        *self.userlist.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(userlist);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    pub fn client_count(&self) -> usize {
        self.clients.load(Ordering::Relaxed)
    }
}

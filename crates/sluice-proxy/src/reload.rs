//! Loading what a reload re-reads — the ini, the auth file, TLS files and
//! the hba rules — and installing it, keeping the old configuration when
//! anything is invalid. Used at start, on SIGHUP and by RELOAD.

use sluice_auth::{Hba, Userlist};
use sluice_config::{Config, ConfigSource, Loaded};

use crate::shared::{load_hba, Shared, TlsState};

/// The TLS configurations and, for auth_type=hba, the hba rules. Warnings
/// about settings rustls cannot honour exactly are logged.
pub fn load_tls_and_hba(config: &Config) -> Result<(TlsState, Option<Hba>), String> {
    let (tls, warnings) =
        TlsState::from_config(config).map_err(|e| format!("TLS configuration: {e}"))?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    let hba = load_hba(config).map_err(|e| format!("auth_hba_file: {e}"))?;
    Ok((tls, hba))
}

/// The auth_file's users, plus those the environment adds (edoburu's and
/// bitnami's images write their user into the userlist; here it stays in
/// memory): for a user in both, bitnami's entry wins (that image rewrites
/// its file), edoburu's does not (that image only adds missing users).
pub fn load_userlist(loaded: &Loaded) -> Result<Userlist, String> {
    let mut users = match &loaded.config.general.auth_file {
        Some(p) => {
            sluice_auth::load_userlist(p).map_err(|e| format!("auth_file {}: {e}", p.display()))?
        }
        None => Userlist::default(),
    };
    let from_env = sluice_auth::parse_userlist(&loaded.env_userlist)
        .map_err(|e| format!("userlist from the environment: {e}"))?;
    for (user, secret) in from_env {
        if loaded.env_userlist_wins || !users.contains_key(&user) {
            users.insert(user, secret);
        }
    }
    Ok(users)
}

/// Re-reads everything from `source` and installs it; on any error the
/// old configuration stays and the reason is returned.
pub fn reload(shared: &Shared, source: &ConfigSource) -> Result<(), String> {
    let loaded = source.load().map_err(|e| e.to_string())?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let userlist = load_userlist(&loaded)?;
    let config = loaded.config;
    let (tls, hba) = load_tls_and_hba(&config)?;
    let old = shared.config();
    if old.general.listen_addr != config.general.listen_addr
        || old.general.listen_port != config.general.listen_port
        || old.general.unix_socket_dir != config.general.unix_socket_dir
    {
        tracing::warn!("listen_addr/listen_port/unix_socket_dir changes need a restart");
    }
    shared.reload(config, userlist, tls, hba);
    Ok(())
}

//! Loading what a reload re-reads — the ini, the auth file, TLS files and
//! the hba rules — and installing it, keeping the old configuration when
//! anything is invalid. Used at start, on SIGHUP and by RELOAD.

use std::path::Path;

use sluice_auth::{Hba, Userlist};
use sluice_config::Config;

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

pub fn load_userlist(config: &Config) -> Result<Userlist, String> {
    match &config.general.auth_file {
        Some(p) => {
            sluice_auth::load_userlist(p).map_err(|e| format!("auth_file {}: {e}", p.display()))
        }
        None => Ok(Userlist::default()),
    }
}

/// Re-reads everything from `path` and installs it; on any error the old
/// configuration stays and the reason is returned.
pub fn reload(shared: &Shared, path: &Path) -> Result<(), String> {
    let (config, warnings) = sluice_config::load(path).map_err(|e| e.to_string())?;
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let userlist = load_userlist(&config)?;
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

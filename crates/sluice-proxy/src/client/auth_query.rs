//! auth_query: the secret of a user missing from auth_file is fetched from
//! PostgreSQL, as PgBouncer does, by running `auth_query` (default: from
//! pg_authid) with the user name as `$1` over a server connection of the
//! `auth_user` (whose own password must be in auth_file). Run at each login
//! of such a user, so a changed or revoked password takes effect at once.

use std::sync::Arc;
use std::time::Duration;

use sluice_auth::Secret;
use sluice_config::{Config, DatabaseDef};

use crate::errors::ClientError;
use crate::shared::Shared;

/// The auth_user for logins to `db`: the database's, else the global one.
pub fn auth_user<'a>(cfg: &'a Config, db: &'a DatabaseDef) -> Option<&'a str> {
    db.auth_user
        .as_deref()
        .or(cfg.general.auth_user.as_deref())
        .filter(|u| !u.is_empty())
}

/// Looks `user` up with auth_query. `Ok(None)`: no such user, or no
/// password (NULL, e.g. expired) — the login then fails like a wrong one.
#[allow(clippy::too_many_arguments)]
pub async fn fetch_secret(
    shared: &Arc<Shared>,
    cfg: &Config,
    db: &DatabaseDef,
    database: &str,
    auth_user: &str,
    user: &str,
    wait: Duration,
) -> Result<Option<Secret>, ClientError> {
    // auth_dbname (the database's, else the global one) names the database
    // whose pool runs the query; by default the client's own.
    let auth_db = db
        .auth_dbname
        .as_deref()
        .or(cfg.general.auth_dbname.as_deref())
        .unwrap_or(database);
    if cfg.database(auth_db).is_none() {
        tracing::error!("authentication database \"{auth_db}\" is not configured");
        return Err(ClientError::fatal("08P01", "bouncer config error"));
    }
    let query = db.auth_query.as_deref().unwrap_or(&cfg.general.auth_query);
    let users = shared.userlist();
    let tls = shared.tls();
    let route = shared
        .pools
        .route(cfg, &users, auth_db, auth_user, &tls.server)?;
    let mut srv = route
        .pool
        .acquire(wait)
        .await
        .map_err(ClientError::from_pool)?;
    let row = srv.query_row(query, &[Some(user)]).await;
    match &row {
        Ok(_) => srv.release(),
        Err(_) => srv.close(),
    }
    let row = row.map_err(|e| {
        tracing::error!(auth_user, "auth_query failed: {e}");
        ClientError::fatal("08P01", "bouncer config error")
    })?;
    let stored = row.and_then(|r| r.into_iter().nth(1).flatten());
    Ok(stored
        .filter(|s| !s.is_empty())
        .and_then(|s| Secret::parse(&s).ok()))
}

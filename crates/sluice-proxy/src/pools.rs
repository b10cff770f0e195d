//! The registry of pools, keyed by (database, user), and how a pool's
//! settings follow from pgbouncer.ini: database entry, then [users], then
//! the [pgbouncer] defaults.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use sluice_auth::{Secret, Userlist};
use sluice_config::{Config, DatabaseDef, PoolMode};
use sluice_pool::login::LoginParams;
use sluice_pool::{Limit, Pool, PoolKey, PoolSettings, ServerAddr, ServerSecret};
use sluice_tls::ServerTls;

use crate::errors::ClientError;

#[derive(Default)]
pub struct PoolRegistry {
    pools: RwLock<HashMap<PoolKey, Arc<Pool>>>,
    db_limits: Mutex<HashMap<String, Arc<Limit>>>,
    user_limits: Mutex<HashMap<String, Arc<Limit>>>,
}

/// Where a client's transactions go and how.
pub struct Route {
    pub pool: Arc<Pool>,
    pub mode: PoolMode,
}

impl PoolRegistry {
    /// The pool for a client of `database` logged in as `client_user`.
    pub fn route(
        &self,
        cfg: &Config,
        users: &Userlist,
        database: &str,
        client_user: &str,
        tls: &ServerTls,
    ) -> Result<Route, ClientError> {
        let db = cfg
            .database(database)
            .ok_or_else(|| ClientError::fatal("08P01", format!("no such database: {database}")))?;
        let server_user = db.user.clone().unwrap_or_else(|| client_user.to_string());
        let mode = pool_mode(cfg, db, client_user);
        let key = PoolKey {
            database: database.to_string(),
            user: server_user.clone(),
        };
        if let Some(p) = self
            .pools
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(Route {
                pool: p.clone(),
                mode,
            });
        }
        let settings = build_settings(cfg, users, db, database, &server_user, tls);
        let db_limit = limit(
            &self.db_limits,
            database,
            db.max_db_connections
                .unwrap_or(cfg.general.max_db_connections),
        );
        let user_max = cfg
            .users
            .get(&server_user)
            .and_then(|u| u.max_user_connections)
            .unwrap_or(cfg.general.max_user_connections);
        let user_limit = limit(&self.user_limits, &server_user, user_max);
        let mut pools = self.pools.write().unwrap_or_else(|e| e.into_inner());
        let pool = pools
            .entry(key.clone())
            .or_insert_with(|| Pool::new(key, settings, db_limit, user_limit))
            .clone();
        Ok(Route { pool, mode })
    }

    pub fn all(&self) -> Vec<Arc<Pool>> {
        self.pools
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Applies a reloaded configuration to the existing pools; pools whose
    /// database entry is gone are closed.
    pub fn reconfigure(&self, cfg: &Config, users: &Userlist, tls: &ServerTls) {
        let mut pools = self.pools.write().unwrap_or_else(|e| e.into_inner());
        pools.retain(|key, pool| {
            let Some(db) = cfg.database(&key.database) else {
                pool.close();
                return false;
            };
            let mut s = build_settings(cfg, users, db, &key.database, &key.user, tls);
            let old = pool.settings();
            if let (
                Some(ServerSecret::Scram {
                    secret: new,
                    client_key,
                }),
                Some(ServerSecret::Scram {
                    secret: was,
                    client_key: Some(k),
                }),
            ) = (&mut s.login.secret, &old.login.secret)
            {
                if new.stored_key == was.stored_key {
                    *client_key = Some(*k);
                }
            }
            if s.login.addr != old.login.addr || s.login.database != old.login.database {
                // Drain the old servers: none is lent again.
                pool.retire_all("database configuration changed");
            }
            pool.set_settings(s);
            true
        });
        for (name, l) in self
            .db_limits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let max = cfg
                .database(name)
                .and_then(|d| d.max_db_connections)
                .unwrap_or(cfg.general.max_db_connections);
            l.set_max(max);
        }
        for (name, l) in self
            .user_limits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let max = cfg
                .users
                .get(name)
                .and_then(|u| u.max_user_connections)
                .unwrap_or(cfg.general.max_user_connections);
            l.set_max(max);
        }
    }
}

fn limit(map: &Mutex<HashMap<String, Arc<Limit>>>, name: &str, max: usize) -> Arc<Limit> {
    map.lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(name.to_string())
        .or_insert_with(|| Arc::new(Limit::new(max)))
        .clone()
}

/// [users] pool_mode, then the database's, then the general one.
pub fn pool_mode(cfg: &Config, db: &DatabaseDef, client_user: &str) -> PoolMode {
    cfg.users
        .get(client_user)
        .and_then(|u| u.pool_mode)
        .or(db.pool_mode)
        .unwrap_or(cfg.general.pool_mode)
}

pub fn server_secret(secret: &Secret) -> ServerSecret {
    match secret {
        Secret::Plain(p) => ServerSecret::Plain(p.clone()),
        Secret::Md5(m) => ServerSecret::Md5(m.clone()),
        Secret::Scram(s) => ServerSecret::Scram {
            secret: s.clone(),
            client_key: None,
        },
    }
}

fn build_settings(
    cfg: &Config,
    users: &Userlist,
    db: &DatabaseDef,
    database: &str,
    server_user: &str,
    tls: &ServerTls,
) -> PoolSettings {
    let g = &cfg.general;
    let user_def = cfg.users.get(server_user);
    let secret = match &db.password {
        Some(p) if db.user.is_some() => Some(ServerSecret::Plain(p.clone())),
        _ => users.get(server_user).map(server_secret),
    };
    let mut startup = Vec::new();
    if let Some(v) = &db.client_encoding {
        startup.push(("client_encoding".to_string(), v.clone()));
    }
    if let Some(v) = &db.datestyle {
        startup.push(("DateStyle".to_string(), v.clone()));
    }
    if let Some(v) = &db.timezone {
        startup.push(("TimeZone".to_string(), v.clone()));
    }
    if let Some(v) = &db.application_name {
        startup.push(("application_name".to_string(), v.clone()));
    }
    PoolSettings {
        login: LoginParams {
            addr: ServerAddr::from_host_port(db.host.as_deref(), db.port),
            user: server_user.to_string(),
            database: db.dbname.clone().unwrap_or_else(|| database.to_string()),
            secret,
            startup,
            max_packet_size: g.max_packet_size,
            tls: tls.clone(),
        },
        pool_size: db
            .pool_size
            .or(user_def.and_then(|u| u.pool_size))
            .unwrap_or(g.default_pool_size),
        min_pool_size: db.min_pool_size.unwrap_or(g.min_pool_size),
        reserve_pool_size: db
            .reserve_pool_size
            .or(user_def.and_then(|u| u.reserve_pool_size))
            .unwrap_or(g.reserve_pool_size),
        reserve_pool_timeout: g.reserve_pool_timeout,
        server_lifetime: db.server_lifetime.unwrap_or(g.server_lifetime),
        server_idle_timeout: g.server_idle_timeout,
        server_connect_timeout: g.server_connect_timeout,
        server_login_retry: g.server_login_retry,
        server_check_delay: g.server_check_delay,
        server_check_query: g.server_check_query.clone(),
        connect_query: db.connect_query.clone(),
        log_connections: g.log_connections,
        log_disconnections: g.log_disconnections,
    }
}

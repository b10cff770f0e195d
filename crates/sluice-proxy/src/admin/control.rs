//! The console commands that change things: PAUSE, RESUME, SUSPEND,
//! RECONNECT, KILL, KILL_CLIENT, ENABLE, DISABLE, WAIT_CLOSE, RELOAD,
//! SHUTDOWN and SET, with PgBouncer's errors.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use sluice_pool::Pool;

use super::command::Command;
use super::resultset::put_command_complete;
use super::show::ADMIN_DB;
use super::{admin_error, AdminError};
use crate::shared::{Shared, ShutdownMode};

pub async fn run(out: &mut BytesMut, shared: &Arc<Shared>, cmd: Command) -> Result<(), AdminError> {
    let tag = match cmd {
        Command::Pause(db) => pause(shared, db).await?,
        Command::Resume(db) => resume(shared, db)?,
        Command::Suspend => {
            if shared.pause.any_paused() {
                return Err(admin_error("already suspended/paused"));
            }
            shared.pause.suspend();
            until(|| shared.pools.all().iter().all(|p| p.lent() == 0)).await;
            "SUSPEND"
        }
        Command::Reconnect(db) => {
            for p in pools_of(shared, db.as_deref(), "reconnect")? {
                p.reconnect();
            }
            "RECONNECT"
        }
        Command::Kill(db) => kill(shared, db)?,
        Command::KillClient(id) => {
            let id: u64 = id
                .trim()
                .parse()
                .map_err(|_| admin_error("invalid client pointer supplied"))?;
            let c = shared
                .registry
                .get(id)
                .ok_or_else(|| admin_error("client not found"))?;
            c.kill("admin forced disconnect");
            "KILL_CLIENT"
        }
        Command::Enable(db) => {
            check_database(shared, &db, "enable")?;
            shared.pause.set_disabled(&db, false);
            "ENABLE"
        }
        Command::Disable(db) => {
            check_database(shared, &db, "disable")?;
            shared.pause.set_disabled(&db, true);
            "DISABLE"
        }
        Command::WaitClose(db) => {
            let pools = pools_of(shared, db.as_deref(), "wait in")?;
            until(|| pools.iter().all(|p| p.old_servers() == 0)).await;
            "WAIT_CLOSE"
        }
        Command::Reload => {
            if let Err(e) = shared.reload_from_disk() {
                tracing::error!("RELOAD failed, keeping the old configuration: {e}");
                return Err((
                    "F0000",
                    "RELOAD failed, see logs for additional details".to_string(),
                ));
            }
            "RELOAD"
        }
        Command::Shutdown(mode) => {
            let mode = match mode.as_deref() {
                None => ShutdownMode::Immediate,
                Some("WAIT_FOR_SERVERS") => ShutdownMode::WaitForServers,
                Some("WAIT_FOR_CLIENTS") => ShutdownMode::WaitForClients,
                Some(other) => {
                    return Err(admin_error(format!(
                        "invalid command 'SHUTDOWN {other}', use SHOW HELP;"
                    )))
                }
            };
            shared.request_shutdown(mode);
            if mode == ShutdownMode::Immediate {
                // As PgBouncer: no reply, the process goes away.
                std::future::pending::<()>().await;
            }
            "SHUTDOWN"
        }
        Command::Set { key, value } => {
            let mut cfg = (*shared.config()).clone();
            if let Err(e) = sluice_config::set_value(&mut cfg.general, &key, &value) {
                tracing::error!("SET {key} = {value}: {e}");
                return Err(admin_error("SET failed"));
            }
            apply_config(shared, cfg).map_err(|e| {
                tracing::error!("SET {key} = {value}: {e}");
                admin_error("SET failed")
            })?;
            put_command_complete(out, &format!("SET {key}={value}"));
            return Ok(());
        }
        Command::Show(_) | Command::Empty => return Ok(()),
    };
    put_command_complete(out, tag);
    Ok(())
}

/// Installs settings changed by SET (TLS and hba rebuilt from them).
fn apply_config(shared: &Shared, cfg: sluice_config::Config) -> Result<(), String> {
    let (tls, hba) = crate::reload::load_tls_and_hba(&cfg)?;
    let users = shared.userlist();
    shared.reload(cfg, (*users).clone(), tls, hba);
    Ok(())
}

async fn pause(shared: &Arc<Shared>, db: Option<String>) -> Result<&'static str, AdminError> {
    let pools = match &db {
        None => {
            if shared.pause.any_paused() {
                return Err(admin_error("already suspended/paused"));
            }
            shared.pause.pause_all();
            shared.pools.all()
        }
        Some(db) => {
            let pools = pools_of(shared, Some(db), "pause")?;
            shared.pause.pause_db(db);
            pools
        }
    };
    // As PgBouncer: wait for every transaction to end, then let the
    // servers go.
    until(|| pools.iter().all(|p| p.lent() == 0)).await;
    for p in &pools {
        p.close_idle("pause mode");
    }
    Ok("PAUSE")
}

fn resume(shared: &Shared, db: Option<String>) -> Result<&'static str, AdminError> {
    match db {
        None => {
            if shared.is_shutting_down() {
                return Err(admin_error("pooler is shutting down"));
            }
            if !shared.pause.any_paused() {
                return Err(admin_error("pooler is not paused/suspended"));
            }
            shared.pause.resume_all();
        }
        Some(db) => {
            check_database(shared, &db, "resume")?;
            if !shared.pause.resume_db(&db) {
                return Err(admin_error(format!("database {db} is not paused")));
            }
        }
    }
    Ok("RESUME")
}

/// KILL [db]: drop the clients and servers now and keep the database(s)
/// paused until RESUME.
fn kill(shared: &Shared, db: Option<String>) -> Result<&'static str, AdminError> {
    let dbs: Vec<String> = match &db {
        Some(db) => {
            check_database(shared, db, "kill")?;
            vec![db.clone()]
        }
        None => {
            if shared.pause.any_paused() {
                return Err(admin_error("already suspended/paused"));
            }
            let cfg = shared.config();
            let mut all: Vec<String> = cfg
                .databases
                .keys()
                .filter(|d| *d != "*")
                .cloned()
                .collect();
            all.extend(shared.pools.all().iter().map(|p| p.key.database.clone()));
            all.sort();
            all.dedup();
            all
        }
    };
    for d in &dbs {
        shared.pause.pause_db(d);
    }
    for c in shared.registry.list() {
        if c.pool.as_ref().is_some_and(|k| dbs.contains(&k.database)) {
            c.kill("database removed");
        }
    }
    for p in shared.pools.all() {
        if dbs.contains(&p.key.database) {
            p.reconnect();
        }
    }
    Ok("KILL")
}

/// A database the command may act on: configured (or reachable through
/// `*`), and not the console itself.
fn check_database(shared: &Shared, db: &str, verb: &str) -> Result<(), AdminError> {
    if super::is_admin_database(db) || db == ADMIN_DB {
        return Err(admin_error(format!("cannot {verb} admin db: {db}")));
    }
    if shared.config().database(db).is_none() {
        return Err(admin_error(format!("no such database: {db}")));
    }
    Ok(())
}

/// The pools of one database (checked), or of all when `db` is None.
fn pools_of(shared: &Shared, db: Option<&str>, verb: &str) -> Result<Vec<Arc<Pool>>, AdminError> {
    let all = shared.pools.all();
    match db {
        None => Ok(all),
        Some(db) => {
            check_database(shared, db, verb)?;
            Ok(all.into_iter().filter(|p| p.key.database == db).collect())
        }
    }
}

/// Waits until `done` holds, checking every 20 ms.
async fn until(done: impl Fn() -> bool) {
    while !done() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

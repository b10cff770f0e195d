//! SHOW on the console: the same commands, columns, column order and types
//! as PgBouncer 1.25 (see the README's "Operating" section for the few
//! values Sluice cannot have, which are empty or zero).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use sluice_config::{Config, PoolMode};
use sluice_pool::Pool;
use sluice_protocol::builders::put_message;

use super::resultset::{put_command_complete, ColType, ResultSet, Value};
use super::{admin_error, show_sockets, show_stats, version_string, AdminError, AdminUser};
use crate::clients::{ClientInfo, ClientState};
use crate::shared::Shared;

use ColType::{Int4, Int8, Text};

const HELP: &str = "\n\tSHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION\n\tSHOW PEERS|PEER_POOLS\n\tSHOW FDS|SOCKETS|ACTIVE_SOCKETS|LISTS|MEM|STATE\n\tSHOW DNS_HOSTS|DNS_ZONES\n\tSHOW STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS\n\tSET key = arg\n\tRELOAD\n\tPAUSE [<db>]\n\tRESUME [<db>]\n\tDISABLE <db>\n\tENABLE <db>\n\tRECONNECT [<db>]\n\tKILL [<db>]\n\tKILL_CLIENT <client_id>\n\tSUSPEND\n\tSHUTDOWN\n\tSHUTDOWN WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS\n\tWAIT_CLOSE [<db>]";

/// Session parameters the console pretends to have (`SHOW timezone` from
/// drivers and `SET` of them are accepted and ignored).
const FAKE_PARAMETERS: &[(&str, &str)] = &[
    ("client_encoding", "UTF-8"),
    ("default_transaction_isolation", "read committed"),
    ("standard_conforming_strings", "on"),
    ("datestyle", "ISO"),
    ("timezone", "GMT"),
    ("extra_float_digits", "2"),
];

pub fn is_fake_parameter(name: &str) -> bool {
    FAKE_PARAMETERS
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// The database name of the console in every listing.
pub const ADMIN_DB: &str = "pgbouncer";

pub fn show(
    out: &mut BytesMut,
    shared: &Arc<Shared>,
    admin: &AdminUser,
    what: &str,
    text: &str,
) -> Result<(), AdminError> {
    if let Some((name, value)) = FAKE_PARAMETERS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(what))
    {
        let mut rs = ResultSet::new(&[(name, Text)]);
        rs.row(vec![(*value).into()]);
        rs.write(out, "SHOW");
        return Ok(());
    }
    let rs = match what {
        "HELP" => {
            put_message(out, b'N', |b| {
                for (field, value) in [
                    (b'S', "NOTICE"),
                    (b'C', "00000"),
                    (b'M', "Console usage"),
                    (b'D', HELP),
                ] {
                    b.put_u8(field);
                    b.put_slice(value.as_bytes());
                    b.put_u8(0);
                }
                b.put_u8(0);
            });
            put_command_complete(out, "SHOW");
            return Ok(());
        }
        "VERSION" => {
            let mut rs = ResultSet::new(&[("version", Text)]);
            rs.row(vec![version_string().into()]);
            rs
        }
        "POOLS" => pools(shared),
        "STATS" => show_stats::stats(shared),
        "STATS_TOTALS" => show_stats::stats_totals(shared),
        "STATS_AVERAGES" => show_stats::stats_averages(shared),
        "TOTALS" => show_stats::totals(shared),
        "CLIENTS" => show_sockets::clients(shared),
        "SERVERS" => show_sockets::servers(shared),
        "DATABASES" => databases(shared),
        "USERS" => users(shared),
        "CONFIG" => config(shared),
        "LISTS" => lists(shared),
        "STATE" => state(shared),
        "SOCKETS" => show_sockets::sockets(shared, false),
        "ACTIVE_SOCKETS" => show_sockets::sockets(shared, true),
        "FDS" => {
            if !admin.is_admin {
                return Err(admin_error("admin access needed"));
            }
            // No online restart, so no file descriptors to hand over.
            ResultSet::new(&[
                ("fd", Int4),
                ("task", Text),
                ("user", Text),
                ("database", Text),
                ("addr", Text),
                ("port", Int4),
                ("cancel", Int8),
                ("link", Int4),
                ("client_encoding", Text),
                ("std_strings", Text),
                ("datestyle", Text),
                ("timezone", Text),
                ("password", Text),
                ("scram_client_key", Text),
                ("scram_server_key", Text),
            ])
        }
        "MEM" => ResultSet::new(&[
            ("name", Text),
            ("size", Int4),
            ("used", Int4),
            ("free", Int4),
            ("memtotal", Int4),
        ]),
        "DNS_HOSTS" => ResultSet::new(&[("hostname", Text), ("ttl", Int8), ("addrs", Text)]),
        "DNS_ZONES" => ResultSet::new(&[("zonename", Text), ("serial", Int8), ("count", Int4)]),
        "PEERS" => ResultSet::new(&[
            ("peer_id", Int4),
            ("host", Text),
            ("port", Int4),
            ("pool_size", Int4),
        ]),
        "PEER_POOLS" => ResultSet::new(&[
            ("peer_id", Int4),
            ("cl_active_cancel_req", Int4),
            ("cl_waiting_cancel_req", Int4),
            ("sv_active_cancel", Int4),
            ("sv_login", Int4),
        ]),
        _ => {
            return Err(admin_error(format!(
                "invalid command '{}', use SHOW HELP;",
                text.trim()
            )))
        }
    };
    rs.write(out, "SHOW");
    Ok(())
}

/// Pools sorted by (database, user).
pub(crate) fn sorted_pools(shared: &Shared) -> Vec<Arc<Pool>> {
    let mut pools = shared.pools.all();
    pools.sort_by(|a, b| a.key.cmp(&b.key));
    pools
}

fn mode_of(cfg: &Config, db: &str, user: &str) -> PoolMode {
    let def = cfg.database(db);
    cfg.users
        .get(user)
        .and_then(|u| u.pool_mode)
        .or(def.and_then(|d| d.pool_mode))
        .unwrap_or(cfg.general.pool_mode)
}

/// Clients per pool: (active, waiting, longest wait in µs).
fn client_counts(clients: &[Arc<ClientInfo>]) -> BTreeMap<(String, String), (usize, usize, u64)> {
    let mut m: BTreeMap<(String, String), (usize, usize, u64)> = BTreeMap::new();
    for c in clients {
        let key = match &c.pool {
            Some(k) => (k.database.clone(), k.user.clone()),
            None => (ADMIN_DB.to_string(), ADMIN_DB.to_string()),
        };
        let e = m.entry(key).or_default();
        match c.state() {
            ClientState::Waiting => {
                e.1 += 1;
                e.2 = e.2.max(c.waited_micros());
            }
            ClientState::Active => e.0 += 1,
        }
    }
    m
}

fn load_balance(cfg: &Config, db: &str) -> Value {
    match cfg.database(db).and_then(|d| d.host.as_deref()) {
        Some(h) if h.contains(',') => "disable".into(),
        _ => Value::Null,
    }
}

pub(crate) fn pools(shared: &Shared) -> ResultSet {
    let cfg = shared.config();
    let mut rs = ResultSet::new(&[
        ("database", Text),
        ("user", Text),
        ("cl_active", Int4),
        ("cl_waiting", Int4),
        ("cl_active_cancel_req", Int4),
        ("cl_waiting_cancel_req", Int4),
        ("sv_active", Int4),
        ("sv_active_cancel", Int4),
        ("sv_being_canceled", Int4),
        ("sv_idle", Int4),
        ("sv_used", Int4),
        ("sv_tested", Int4),
        ("sv_login", Int4),
        ("maxwait", Int4),
        ("maxwait_us", Int4),
        ("pool_mode", Text),
        ("load_balance_hosts", Text),
    ]);
    let counts = client_counts(&shared.registry.list());
    let admin_key = (ADMIN_DB.to_string(), ADMIN_DB.to_string());
    let mut rows: Vec<(String, String, Vec<Value>)> = Vec::new();
    let (a, w, _) = counts.get(&admin_key).copied().unwrap_or_default();
    let mut admin_row = vec![ADMIN_DB.into(), ADMIN_DB.into(), a.into(), w.into()];
    admin_row.extend((0..11).map(|_| Value::Int(0)));
    admin_row.extend(["statement".into(), Value::Null]);
    rows.push((ADMIN_DB.into(), ADMIN_DB.into(), admin_row));
    for p in sorted_pools(shared) {
        let k = &p.key;
        let st = p.status();
        let (active, waiting, wait_us) = counts
            .get(&(k.database.clone(), k.user.clone()))
            .copied()
            .unwrap_or_default();
        let row = vec![
            k.database.clone().into(),
            k.user.clone().into(),
            active.into(),
            waiting.into(),
            0.into(),
            0.into(),
            st.active.into(),
            0.into(),
            st.being_canceled.into(),
            st.idle.into(),
            st.used.into(),
            0.into(),
            st.login.into(),
            (wait_us / 1_000_000).into(),
            (wait_us % 1_000_000).into(),
            mode_of(&cfg, &k.database, &k.user).as_str().into(),
            load_balance(&cfg, &k.database),
        ];
        rows.push((k.database.clone(), k.user.clone(), row));
    }
    rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    for (_, _, r) in rows {
        rs.row(r);
    }
    rs
}

pub(crate) fn databases(shared: &Shared) -> ResultSet {
    let cfg = shared.config();
    let g = &cfg.general;
    let mut rs = ResultSet::new(&[
        ("name", Text),
        ("host", Text),
        ("port", Int4),
        ("database", Text),
        ("force_user", Text),
        ("pool_size", Int4),
        ("min_pool_size", Int4),
        ("reserve_pool_size", Int4),
        ("server_lifetime", Int4),
        ("pool_mode", Text),
        ("load_balance_hosts", Text),
        ("max_connections", Int4),
        ("current_connections", Int4),
        ("max_client_connections", Int4),
        ("current_client_connections", Int4),
        ("paused", Int4),
        ("disabled", Int4),
    ]);
    let pools = shared.pools.all();
    let clients = shared.registry.list();
    // Configured databases, and those reached through the `*` entry.
    let mut names: BTreeSet<String> = cfg
        .databases
        .keys()
        .filter(|n| *n != "*")
        .cloned()
        .collect();
    names.extend(pools.iter().map(|p| p.key.database.clone()));
    names.insert(ADMIN_DB.to_string());
    for name in names {
        let clients_here = clients.iter().filter(|c| c.database == name).count();
        if name == ADMIN_DB {
            let mut row: Vec<Value> = vec![
                ADMIN_DB.into(),
                Value::Null,
                g.listen_port.into(),
                ADMIN_DB.into(),
                ADMIN_DB.into(),
                2.into(),
                0.into(),
                0.into(),
                (g.server_lifetime.as_secs()).into(),
                "statement".into(),
                Value::Null,
            ];
            row.extend([
                0.into(),
                0.into(),
                0.into(),
                clients_here.into(),
                0.into(),
                0.into(),
            ]);
            rs.row(row);
            continue;
        }
        let Some(d) = cfg.database(&name) else {
            continue;
        };
        let servers: usize = pools
            .iter()
            .filter(|p| p.key.database == name)
            .map(|p| p.counts().0)
            .sum();
        rs.row(vec![
            name.clone().into(),
            d.host.clone().into(),
            d.port.into(),
            d.dbname.clone().unwrap_or_else(|| name.clone()).into(),
            d.user.clone().into(),
            d.pool_size.unwrap_or(g.default_pool_size).into(),
            d.min_pool_size.unwrap_or(g.min_pool_size).into(),
            d.reserve_pool_size.unwrap_or(g.reserve_pool_size).into(),
            d.server_lifetime
                .unwrap_or(g.server_lifetime)
                .as_secs()
                .into(),
            d.pool_mode.map(|m| m.as_str()).into(),
            load_balance(&cfg, &name),
            d.max_db_connections.unwrap_or(g.max_db_connections).into(),
            servers.into(),
            0.into(),
            clients_here.into(),
            shared.pause.is_paused(&name).into(),
            shared.pause.is_disabled(&name).into(),
        ]);
    }
    rs
}

/// PgBouncer prints the per-user pool sizes as `%9d` text.
fn padded(v: Option<usize>) -> Value {
    v.map(|n| format!("{n:>9}")).unwrap_or_default().into()
}

fn users(shared: &Shared) -> ResultSet {
    let cfg = shared.config();
    let g = &cfg.general;
    let mut rs = ResultSet::new(&[
        ("name", Text),
        ("pool_size", Text),
        ("reserve_pool_size", Text),
        ("pool_mode", Text),
        ("max_user_connections", Int4),
        ("current_connections", Int4),
        ("max_user_client_connections", Int4),
        ("current_client_connections", Int4),
    ]);
    let pools = shared.pools.all();
    let clients = shared.registry.list();
    let mut names: BTreeSet<String> = cfg.users.keys().cloned().collect();
    names.extend(shared.userlist().keys().cloned());
    names.extend(pools.iter().map(|p| p.key.user.clone()));
    names.extend(clients.iter().map(|c| c.user.clone()));
    for name in names {
        let u = cfg.users.get(&name);
        let servers: usize = pools
            .iter()
            .filter(|p| p.key.user == name)
            .map(|p| p.counts().0)
            .sum();
        rs.row(vec![
            name.clone().into(),
            padded(u.and_then(|u| u.pool_size)),
            padded(u.and_then(|u| u.reserve_pool_size)),
            u.and_then(|u| u.pool_mode).map(|m| m.as_str()).into(),
            u.and_then(|u| u.max_user_connections)
                .unwrap_or(g.max_user_connections)
                .into(),
            servers.into(),
            0.into(),
            clients.iter().filter(|c| c.user == name).count().into(),
        ]);
    }
    rs
}

fn config(shared: &Shared) -> ResultSet {
    let cfg = shared.config();
    let mut rs = ResultSet::new(&[
        ("key", Text),
        ("value", Text),
        ("default", Text),
        ("changeable", Text),
    ]);
    for r in sluice_config::config_rows(&cfg.general) {
        rs.row(vec![
            r.key.into(),
            r.value.into(),
            r.default.into(),
            if r.changeable { "yes" } else { "no" }.into(),
        ]);
    }
    rs
}

pub(crate) fn lists(shared: &Shared) -> ResultSet {
    let cfg = shared.config();
    let pools = shared.pools.all();
    let logged_in = shared.registry.list().len();
    let servers: usize = pools.iter().map(|p| p.counts().0).sum();
    let databases = cfg.databases.keys().filter(|n| *n != "*").count() + 1;
    let users = users(shared).rows().len();
    let mut rs = ResultSet::new(&[("list", Text), ("items", Int4)]);
    for (name, n) in [
        ("databases", databases),
        ("users", users),
        ("peers", 0),
        ("pools", pools.len() + 1),
        ("peer_pools", 0),
        ("free_clients", 0),
        ("used_clients", logged_in),
        (
            "login_clients",
            shared.client_count().saturating_sub(logged_in),
        ),
        ("free_servers", 0),
        ("used_servers", servers),
        ("dns_names", 0),
        ("dns_zones", 0),
        ("dns_queries", 0),
        ("dns_pending", 0),
    ] {
        rs.row(vec![name.into(), n.into()]);
    }
    rs
}

fn state(shared: &Shared) -> ResultSet {
    let p = &shared.pause;
    let suspended = p.is_suspended();
    let paused = !suspended && p.is_all_paused();
    let yes = |b: bool| Value::from(if b { "yes" } else { "no" });
    let mut rs = ResultSet::new(&[("key", Text), ("value", Text)]);
    rs.row(vec!["active".into(), yes(!paused && !suspended)]);
    rs.row(vec!["paused".into(), yes(paused)]);
    rs.row(vec!["suspended".into(), yes(suspended)]);
    rs
}

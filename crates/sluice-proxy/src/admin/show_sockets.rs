//! SHOW CLIENTS, SERVERS, SOCKETS and ACTIVE_SOCKETS: one row per
//! connection with PgBouncer's 21 columns (plus its buffer columns).

use sluice_pool::events::server_ptr;
use sluice_pool::{Pool, ServerState};

use super::resultset::{ColType, ResultSet, Value};
use super::show::sorted_pools;
use super::time::format_micros;
use crate::clients::{client_ptr, ClientInfo, ClientState};
use crate::shared::Shared;

use ColType::{Int4, Text};

/// The 21 columns of SHOW CLIENTS and SHOW SERVERS.
const SOCKET_COLUMNS: &[(&str, ColType)] = &[
    ("type", Text),
    ("user", Text),
    ("database", Text),
    ("replication", Text),
    ("state", Text),
    ("addr", Text),
    ("port", Int4),
    ("local_addr", Text),
    ("local_port", Int4),
    ("connect_time", Text),
    ("request_time", Text),
    ("wait", Int4),
    ("wait_us", Int4),
    ("close_needed", Int4),
    ("ptr", Text),
    ("link", Text),
    ("remote_pid", Int4),
    ("tls", Text),
    ("application_name", Text),
    ("prepared_statements", Int4),
    ("id", Int4),
];

/// The extra buffer columns of SHOW SOCKETS (always 0: Sluice's buffers
/// are not PgBouncer's sbufs).
const SOCKET_DEBUG_COLUMNS: &[(&str, ColType)] = &[
    ("recv_pos", Int4),
    ("pkt_pos", Int4),
    ("pkt_remain", Int4),
    ("send_pos", Int4),
    ("send_remain", Int4),
    ("pkt_avail", Int4),
    ("send_avail", Int4),
];

fn client_row(c: &ClientInfo, state: &str) -> Vec<Value> {
    let wait = c.waited_micros();
    let server = c.server();
    vec![
        "C".into(),
        c.user.clone().into(),
        c.database.clone().into(),
        "none".into(),
        state.into(),
        c.addr.clone().into(),
        c.port.into(),
        if c.local_addr.is_empty() {
            "unix".to_string()
        } else {
            c.local_addr.clone()
        }
        .into(),
        c.local_port.into(),
        format_micros(c.connect_time).into(),
        format_micros(c.request_time()).into(),
        (wait / 1_000_000).into(),
        (wait % 1_000_000).into(),
        0.into(),
        client_ptr(c.id).into(),
        if server == 0 {
            String::new()
        } else {
            server_ptr(server)
        }
        .into(),
        0.into(),
        c.tls.clone().into(),
        c.application_name.clone().into(),
        c.prepared().into(),
        c.id.into(),
    ]
}

fn server_row(p: &Pool, s: &sluice_pool::ServerInfo, state: &str) -> Vec<Value> {
    let client = s.client();
    vec![
        "S".into(),
        p.key.user.clone().into(),
        p.key.database.clone().into(),
        "none".into(),
        state.into(),
        if s.port == 0 || s.addr.starts_with('/') {
            "unix".to_string()
        } else {
            s.addr.clone()
        }
        .into(),
        s.port.into(),
        if s.local_addr.is_empty() {
            "unix".to_string()
        } else {
            s.local_addr.clone()
        }
        .into(),
        s.local_port.into(),
        format_micros(s.connect_time).into(),
        format_micros(s.request_time()).into(),
        0.into(),
        0.into(),
        0.into(),
        server_ptr(s.id).into(),
        if client == 0 {
            String::new()
        } else {
            client_ptr(client)
        }
        .into(),
        s.remote_pid.into(),
        s.tls.clone().into(),
        String::new().into(),
        s.prepared().into(),
        s.id.into(),
    ]
}

pub(crate) fn clients(shared: &Shared) -> ResultSet {
    let mut rs = ResultSet::new(SOCKET_COLUMNS);
    for c in shared.registry.list() {
        let state = match c.state() {
            ClientState::Waiting => "waiting",
            ClientState::Active if c.server() != 0 => "active",
            ClientState::Active => "idle",
        };
        rs.row(client_row(&c, state));
    }
    rs
}

pub(crate) fn servers(shared: &Shared) -> ResultSet {
    let mut rs = ResultSet::new(SOCKET_COLUMNS);
    for p in sorted_pools(shared) {
        for s in p.servers() {
            let state = match s.state() {
                ServerState::Active => "active",
                ServerState::Idle => "idle",
            };
            rs.row(server_row(&p, &s, state));
        }
    }
    rs
}

pub(crate) fn sockets(shared: &Shared, only_active: bool) -> ResultSet {
    let mut cols = SOCKET_COLUMNS.to_vec();
    cols.extend_from_slice(SOCKET_DEBUG_COLUMNS);
    let mut rs = ResultSet::new(&cols);
    let zeros = || (0..SOCKET_DEBUG_COLUMNS.len()).map(|_| Value::Int(0));
    for c in shared.registry.list() {
        let (state, busy) = match c.state() {
            ClientState::Waiting => ("cl_waiting", true),
            ClientState::Active => ("cl_active", c.server() != 0),
        };
        if only_active && !busy {
            continue;
        }
        let mut row = client_row(&c, state);
        row.extend(zeros());
        rs.row(row);
    }
    for p in sorted_pools(shared) {
        for s in p.servers() {
            let (state, busy) = match s.state() {
                ServerState::Active => ("sv_active", true),
                ServerState::Idle => ("sv_idle", false),
            };
            if only_active && !busy {
                continue;
            }
            let mut row = server_row(&p, &s, state);
            row.extend(zeros());
            rs.row(row);
        }
    }
    rs
}

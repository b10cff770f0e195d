//! Reading Sluice's admin console (SHOW POOLS, SHOW CLIENTS) and
//! PostgreSQL's pg_stat_activity for the soak's checks.

use tokio_postgres::{Client, SimpleQueryMessage};

use crate::rig::{DB, USER};

/// The soak pool's row of SHOW POOLS.
#[derive(Debug, Default, Clone)]
pub struct PoolRow {
    pub cl_active: i64,
    pub cl_waiting: i64,
    pub sv_active: i64,
    pub sv_idle: i64,
    pub sv_used: i64,
    pub sv_login: i64,
}

impl PoolRow {
    pub fn servers(&self) -> i64 {
        self.sv_active + self.sv_idle + self.sv_used + self.sv_login
    }
}

async fn rows(c: &Client, sql: &str) -> Result<Vec<Vec<(String, String)>>, String> {
    let msgs = c
        .simple_query(sql)
        .await
        .map_err(|e| crate::rig::error_text(&e))?;
    Ok(msgs
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                r.columns()
                    .iter()
                    .enumerate()
                    .map(|(i, col)| (col.name().to_owned(), r.get(i).unwrap_or("").to_owned()))
                    .collect(),
            ),
            _ => None,
        })
        .collect())
}

fn field(row: &[(String, String)], name: &str) -> i64 {
    row.iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// SHOW POOLS' row for the soak database and user.
pub async fn pool(admin: &Client) -> Result<PoolRow, String> {
    let all = rows(admin, "SHOW POOLS").await?;
    let row = all
        .iter()
        .find(|r| {
            r.iter().any(|(k, v)| k == "database" && v == DB)
                && r.iter().any(|(k, v)| k == "user" && v == USER)
        })
        .ok_or_else(|| "no soak row in SHOW POOLS".to_owned())?;
    Ok(PoolRow {
        cl_active: field(row, "cl_active"),
        cl_waiting: field(row, "cl_waiting"),
        sv_active: field(row, "sv_active"),
        sv_idle: field(row, "sv_idle"),
        sv_used: field(row, "sv_used"),
        sv_login: field(row, "sv_login"),
    })
}

/// Backends of the soak user: (all, `idle in transaction` ones).
pub async fn backends(superuser: &Client) -> Result<(i64, i64), String> {
    let r = rows(
        superuser,
        &format!(
            "SELECT count(*), count(*) FILTER (WHERE state LIKE 'idle in transaction%') \
             FROM pg_stat_activity WHERE usename = '{USER}'"
        ),
    )
    .await?;
    let row = r.first().ok_or("pg_stat_activity: no row")?;
    Ok((
        field(row, "count"),
        row.get(1).and_then(|(_, v)| v.parse().ok()).unwrap_or(0),
    ))
}

/// SHOW POOLS' soak row through a fresh admin connection.
pub async fn rig_pool(rig: &crate::rig::Rig) -> Result<PoolRow, String> {
    let a = crate::rig::admin(&rig.sluice).await?;
    let r = pool(&a.client).await;
    a.close().await;
    r
}

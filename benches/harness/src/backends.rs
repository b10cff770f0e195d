//! Counting a target's server connections while a run lasts: a superuser
//! session samples pg_stat_activity every 100 ms for the role the target
//! logs in to PostgreSQL as (each pooler has its own), and keeps the most
//! seen. A pooler must stay at or below its pool size.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio_postgres::NoTls;

pub struct Watcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Option<i64>>>,
}

const QUERY: &str = "SELECT count(*) FROM pg_stat_activity \
                     WHERE backend_type = 'client backend' AND usename = $1";

impl Watcher {
    /// Starts sampling the backends of `role` (via `superuser_url`).
    pub fn start(superuser_url: String, role: String) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async move {
                let (client, connection) =
                    tokio_postgres::connect(&superuser_url, NoTls).await.ok()?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                let statement = client.prepare(QUERY).await.ok()?;
                let mut most = 0i64;
                while !flag.load(Ordering::Relaxed) {
                    if let Ok(row) = client.query_one(&statement, &[&role]).await {
                        most = most.max(row.get::<_, i64>(0));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Some(most)
            })
        });
        Watcher {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops sampling; the most backends seen (None if sampling failed).
    pub fn finish(mut self) -> Option<i64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take()?.join().ok().flatten()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

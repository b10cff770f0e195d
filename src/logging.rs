//! Log output through `tracing`: stderr (unless quiet) and/or the logfile.

use std::path::Path;

use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::EnvFilter;

pub fn init(logfile: Option<&Path>, quiet: bool, verbose: u8) -> std::io::Result<()> {
    let level = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match (logfile, quiet) {
        (Some(p), true) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?;
            builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(f))
                .init();
        }
        (Some(p), false) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?;
            builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(f).and(std::io::stderr))
                .init();
        }
        (None, true) => builder.with_writer(std::io::sink).init(),
        (None, false) => builder.with_writer(std::io::stderr).init(),
    }
    Ok(())
}

//! The `sluice` binary: PgBouncer's command line, logging, daemon mode,
//! signals (SIGHUP reload, SIGINT/SIGTERM graceful, SIGQUIT immediate),
//! and the runtime that runs the proxy.

mod cli;
mod health;
mod logging;
mod print_config;
mod process;

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use sluice_auth::Userlist;
use sluice_config::env::EnvVars;
use sluice_config::{Config, ConfigSource, Loaded};
use sluice_proxy::{Shared, ShutdownMode};
use tokio::signal::unix::{signal, SignalKind};

fn main() -> ExitCode {
    let args = match cli::parse(std::env::args().skip(1)) {
        Ok(cli::Command::Run(a)) => a,
        Ok(cli::Command::Exit(code)) => return code,
        Err(msg) => {
            eprintln!("sluice: {msg}\nTry 'sluice --help' for more information.");
            return ExitCode::from(1);
        }
    };
    // No file: the environment alone (the container images' variables);
    // --env: the environment over the file.
    let source = ConfigSource {
        file: args.config.clone(),
        env: (args.config.is_none() || args.env).then(EnvVars::from_process),
    };
    let loaded = match source.load() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("FATAL {e}");
            return ExitCode::from(1);
        }
    };
    let userlist = match sluice_proxy::reload::load_userlist(&loaded) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("FATAL {e}");
            return ExitCode::from(1);
        }
    };
    if args.health {
        return health::run(&loaded.config);
    }
    if args.print_config {
        print!("{}", print_config::render(&loaded, &userlist));
        return ExitCode::SUCCESS;
    }
    let Loaded {
        config,
        warnings,
        dialect,
        ..
    } = loaded;
    if args.daemon {
        if config.general.pidfile.is_none() {
            eprintln!("FATAL: without pidfile set, daemonization (-d) is not allowed");
            return ExitCode::from(1);
        }
        if config.general.logfile.is_none() && !args.quiet {
            eprintln!("FATAL: daemon mode needs a logfile (set logfile in [pgbouncer]) or -q");
            return ExitCode::from(1);
        }
        if let Err(e) = process::daemonize() {
            eprintln!("FATAL: could not daemonize: {e}");
            return ExitCode::from(1);
        }
    }
    let verbosity = config.general.verbose.saturating_add(args.verbose);
    let g = &config.general;
    if let Err(e) = logging::init(logging::LogOptions {
        logfile: g.logfile.as_deref(),
        quiet: args.quiet || args.daemon,
        verbose: verbosity,
        json: g.log_format == sluice_config::LogFormat::Json,
        syslog: g
            .syslog
            .then(|| (g.syslog_ident.clone(), g.syslog_facility.clone())),
    }) {
        eprintln!("FATAL: cannot open logfile: {e}");
        return ExitCode::from(1);
    }
    if let Some(dialect) = dialect {
        tracing::info!("configuration from the environment ({dialect} variables)");
    }
    for w in &warnings {
        tracing::warn!("{w}");
    }
    if let Some(user) = args.user.as_deref().or(config.general.user.as_deref()) {
        if let Err(e) = process::switch_user(user) {
            tracing::error!("could not switch to user {user}: {e}");
            return ExitCode::from(1);
        }
    }
    let _pidfile = match config
        .general
        .pidfile
        .as_deref()
        .map(process::PidFile::create)
        .transpose()
    {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("pidfile: {e}");
            return ExitCode::from(1);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = rt.block_on(run(source, config, userlist));
    // Client tasks may still hold sockets; do not wait for them.
    rt.shutdown_timeout(Duration::from_millis(100));
    code
}

async fn run(source: ConfigSource, config: Config, userlist: Userlist) -> ExitCode {
    // Handlers first: once the port accepts, a SIGHUP must not kill us.
    let (Ok(mut hup), Ok(mut term), Ok(mut int), Ok(mut quit), Ok(mut usr1), Ok(mut usr2)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::quit()),
        signal(SignalKind::user_defined1()),
        signal(SignalKind::user_defined2()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return ExitCode::from(1);
    };
    let (tls, hba) = match sluice_proxy::reload::load_tls_and_hba(&config) {
        Ok(x) => x,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(1);
        }
    };
    let listeners = match sluice_proxy::listener::bind(&config.general) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot listen: {e}");
            return ExitCode::from(1);
        }
    };
    tracing::info!(
        "Sluice {} listening on {}",
        env!("CARGO_PKG_VERSION"),
        listeners.describe().join(", ")
    );
    let shared = Shared::new(config, userlist, tls, hba);
    shared.set_config_source(source);
    let mut console = shared.shutdown_requests();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(sluice_proxy::run(shared.clone(), listeners, stop_rx));

    // What a graceful shutdown waits for: all clients gone (SIGTERM) or
    // all servers back (SIGINT).
    let mut waiting_for: Option<Shutdown> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = hup.recv() => {
                tracing::info!("got SIGHUP");
                logging::reopen();
                if let Err(e) = shared.reload_from_disk() {
                    tracing::error!("reload failed, keeping the old configuration: {e}");
                }
            }
            Ok(()) = console.changed() => {
                let mode = *console.borrow_and_update();
                match mode {
                    Some(ShutdownMode::Immediate) => {
                        tracing::info!("SHUTDOWN from the console, exiting now");
                        return ExitCode::SUCCESS;
                    }
                    Some(ShutdownMode::WaitForServers) if waiting_for.is_none() => {
                        tracing::info!("SHUTDOWN WAIT_FOR_SERVERS from the console");
                        waiting_for = Some(Shutdown::Servers);
                        shared.draining.store(true, Ordering::Relaxed);
                        begin_shutdown(&shared, &stop_tx);
                    }
                    Some(ShutdownMode::WaitForClients) if waiting_for.is_none() => {
                        tracing::info!("SHUTDOWN WAIT_FOR_CLIENTS from the console");
                        waiting_for = Some(Shutdown::Clients);
                        begin_shutdown(&shared, &stop_tx);
                    }
                    _ => {}
                }
            }
            _ = term.recv() => {
                if waiting_for.is_some() { tracing::info!("got SIGTERM again, exiting now"); return ExitCode::SUCCESS; }
                tracing::info!("got SIGTERM, waiting for clients to disconnect");
                waiting_for = Some(Shutdown::Clients);
                begin_shutdown(&shared, &stop_tx);
            }
            _ = int.recv() => {
                if waiting_for.is_some() { tracing::info!("got SIGINT again, exiting now"); return ExitCode::SUCCESS; }
                tracing::info!("got SIGINT, waiting for servers to be released");
                waiting_for = Some(Shutdown::Servers);
                shared.draining.store(true, Ordering::Relaxed);
                begin_shutdown(&shared, &stop_tx);
            }
            _ = quit.recv() => {
                tracing::info!("got SIGQUIT, exiting immediately");
                return ExitCode::SUCCESS;
            }
            _ = usr1.recv() => {
                tracing::info!("got SIGUSR1, pausing all databases");
                shared.pause.pause_all();
            }
            _ = usr2.recv() => {
                tracing::info!("got SIGUSR2, resuming");
                shared.pause.resume_all();
            }
            _ = tick.tick(), if waiting_for.is_some() => {
                let done = match waiting_for {
                    Some(Shutdown::Clients) => shared.client_count() == 0,
                    Some(Shutdown::Servers) => shared.pools.all().iter().all(|p| {
                        let (total, idle, _) = p.counts();
                        total == idle
                    }),
                    None => false,
                };
                if done {
                    tracing::info!("shutdown complete");
                    for p in shared.pools.all() { p.close(); }
                    let _ = server.await;
                    return ExitCode::SUCCESS;
                }
            }
        }
    }
}

enum Shutdown {
    Clients,
    Servers,
}

fn begin_shutdown(shared: &Arc<Shared>, stop: &tokio::sync::watch::Sender<bool>) {
    shared.shutting_down.store(true, Ordering::Relaxed);
    let _ = stop.send(true);
}

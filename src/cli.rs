//! PgBouncer's command line: `sluice [-d] [-q] [-v] [-u user] [-V] [-h] config.ini`.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug)]
pub struct Args {
    pub daemon: bool,
    pub quiet: bool,
    pub verbose: u8,
    pub user: Option<String>,
    /// pgbouncer.ini; none = configured by the environment alone.
    pub config: Option<PathBuf>,
    /// --env: read the environment's settings too (over the file's).
    pub env: bool,
    /// --print-config: show the effective configuration and exit.
    pub print_config: bool,
    /// `sluice health …`: check the running pooler (HEALTHCHECK).
    pub health: bool,
}

pub enum Command {
    Run(Args),
    /// --help / --version printed; exit with this code.
    Exit(ExitCode),
}

const USAGE: &str = "sluice is a PgBouncer-compatible PostgreSQL connection pooler.

Usage:
  sluice [OPTION]... [CONFIG_FILE]
  sluice health [--env] [CONFIG_FILE]   check the running pooler (exit 0 = healthy)

Without CONFIG_FILE the configuration comes from environment variables, as
the pgbouncer/pgbouncer, edoburu/pgbouncer and bitnami/pgbouncer container
images take them (DATABASES_HOST, DATABASE_URL, DB_HOST, POSTGRESQL_HOST, …).

Options:
  -d, --daemon         run in background (as a daemon)
  -q, --quiet          run quietly (no log to stderr)
  -v, --verbose        increase verbosity (repeatable)
  -u, --user=USERNAME  assume identity of USERNAME
  -R, --reboot         online restart (not supported by Sluice)
  -V, --version        show version, then exit
  -h, --help           show this help, then exit
      --env            with CONFIG_FILE: environment variables override it
      --print-config   show the effective configuration (secrets masked), then exit

Signals: SIGHUP reloads the config and auth_file; SIGINT waits for servers to
be released, then exits; SIGTERM waits for clients to leave, then exits;
SIGQUIT exits at once.";

pub fn parse(args: impl Iterator<Item = String>) -> Result<Command, String> {
    let mut a = Args {
        daemon: false,
        quiet: false,
        verbose: 0,
        user: None,
        config: None,
        env: false,
        print_config: false,
        health: false,
    };
    let mut config = None;
    let mut it = args.peekable();
    if it.peek().map(String::as_str) == Some("health") {
        it.next();
        a.health = true;
    }
    while let Some(arg) = it.next() {
        if let Some(long) = arg.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            match name {
                "daemon" => a.daemon = true,
                "quiet" => a.quiet = true,
                "verbose" => a.verbose = a.verbose.saturating_add(1),
                "user" => {
                    a.user = Some(match value {
                        Some(v) => v,
                        None => it.next().ok_or("option '--user' requires an argument")?,
                    })
                }
                "env" => a.env = true,
                "print-config" => a.print_config = true,
                "version" => return Ok(version()),
                "help" => return Ok(help()),
                "reboot" => return Err(reboot()),
                "" => {
                    config = it.next().map(PathBuf::from);
                    break;
                }
                _ => return Err(format!("unrecognized option '--{name}'")),
            }
        } else if arg.len() > 1 && arg.starts_with('-') {
            let mut chars = arg[1..].chars();
            while let Some(c) = chars.next() {
                match c {
                    'd' => a.daemon = true,
                    'q' => a.quiet = true,
                    'v' => a.verbose = a.verbose.saturating_add(1),
                    'u' => {
                        let rest: String = chars.by_ref().collect();
                        a.user = Some(if rest.is_empty() {
                            it.next().ok_or("option requires an argument -- 'u'")?
                        } else {
                            rest
                        });
                    }
                    'V' => return Ok(version()),
                    'h' => return Ok(help()),
                    'R' => return Err(reboot()),
                    other => return Err(format!("invalid option -- '{other}'")),
                }
            }
        } else if config.is_none() {
            config = Some(PathBuf::from(arg));
        } else {
            return Err(format!("unexpected argument '{arg}'"));
        }
    }
    a.config = config;
    Ok(Command::Run(a))
}

fn version() -> Command {
    println!(
        "Sluice {} (PgBouncer-compatible)",
        env!("CARGO_PKG_VERSION")
    );
    Command::Exit(ExitCode::SUCCESS)
}

fn help() -> Command {
    println!("{USAGE}");
    Command::Exit(ExitCode::SUCCESS)
}

fn reboot() -> String {
    "-R/--reboot (online restart) is not supported by Sluice; PgBouncer deprecated it too. \
     Restart the process, or use SIGHUP to reload"
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(v: &[&str]) -> Result<Args, String> {
        match parse(v.iter().map(|s| s.to_string()))? {
            Command::Run(a) => Ok(a),
            Command::Exit(_) => Err("exit".into()),
        }
    }

    #[test]
    fn short_and_long_flags_parse_like_pgbouncer() {
        let a = run(&["-d", "-vv", "-q", "-u", "bob", "x.ini"]).unwrap();
        assert!(a.daemon && a.quiet);
        assert_eq!(a.verbose, 2);
        assert_eq!(a.user.as_deref(), Some("bob"));
        assert_eq!(a.config, Some(PathBuf::from("x.ini")));
        assert!(!a.env && !a.print_config);
        let a = run(&["--daemon", "--verbose", "--user=al", "y.ini"]).unwrap();
        assert!(a.daemon);
        assert_eq!(a.user.as_deref(), Some("al"));
        assert!(run(&["-R", "x.ini"]).unwrap_err().contains("not supported"));
        // No file: the environment configures Sluice.
        assert_eq!(run(&[]).unwrap().config, None);
        let a = run(&["--env", "--print-config", "z.ini"]).unwrap();
        assert!(a.env && a.print_config && !a.health);
        let a = run(&["health", "z.ini"]).unwrap();
        assert!(a.health);
        assert_eq!(a.config, Some(PathBuf::from("z.ini")));
        assert!(run(&["-x", "a.ini"]).is_err());
    }
}

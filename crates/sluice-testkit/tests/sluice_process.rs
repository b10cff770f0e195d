//! SluiceProcess against a stand-in pooler: this test binary itself, run
//! through a tiny shell wrapper, listening on the ini's `listen_port`.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sluice_testkit::SluiceProcess;

const FAKE_ENV: &str = "SLUICE_TESTKIT_FAKE_POOLER_INI";

/// The stand-in pooler: reads `listen_port` from the ini, listens, accepts forever.
#[test]
#[ignore = "helper: the stand-in pooler started by the other tests"]
fn fake_pooler() {
    let Some(ini_path) = std::env::var_os(FAKE_ENV) else {
        return;
    };
    let ini = std::fs::read_to_string(&ini_path).unwrap();
    let port: u16 = ini
        .lines()
        .find_map(|l| l.strip_prefix("listen_port = "))
        .expect("listen_port in ini")
        .trim()
        .parse()
        .unwrap();
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    println!(
        "fake pooler listening on {port} with {}",
        ini_path.to_string_lossy()
    );
    std::io::stdout().flush().unwrap();
    for conn in listener.incoming() {
        drop(conn);
    }
}

/// A script that runs [`fake_pooler`] with the ini path given as `$1`.
fn fake_binary(dir: &Path) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    script(
        dir,
        "fake-sluice",
        &format!(
            "#!/bin/sh\n{FAKE_ENV}=\"$1\" exec '{}' --exact fake_pooler --ignored --nocapture\n",
            exe.display()
        ),
    )
}

fn script(dir: &Path, name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "sluice-testkit-selftest-{}-{name}",
        std::process::id()
    ))
}

const INI: &str =
    "[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nauth_file = {dir}/userlist.txt\n";

#[test]
fn start_fills_in_the_config_and_waits_until_listening() {
    let bin_dir = scratch("start");
    let mut sluice = SluiceProcess::start(&fake_binary(&bin_dir), INI, "\"u\" \"p\"\n");

    let ini = std::fs::read_to_string(&sluice.ini_path).unwrap();
    assert!(
        ini.contains(&format!("listen_port = {}\n", sluice.port)),
        "{ini}"
    );
    let userlist = sluice.dir.join("userlist.txt");
    assert!(
        ini.contains(&format!("auth_file = {}\n", userlist.display())),
        "{ini}"
    );
    assert_eq!(std::fs::read_to_string(&userlist).unwrap(), "\"u\" \"p\"\n");
    assert_eq!(
        sluice.url("u", "p w", "db"),
        format!(
            "postgresql://u:p%20w@127.0.0.1:{}/db?sslmode=disable",
            sluice.port
        )
    );

    TcpStream::connect(("127.0.0.1", sluice.port)).expect("listening");
    assert!(
        sluice.log().contains("fake pooler listening"),
        "{}",
        sluice.log()
    );
    assert!(sluice.wait_exit(Duration::from_millis(100)).is_none());

    sluice.signal(libc::SIGTERM);
    let status = sluice
        .wait_exit(Duration::from_secs(10))
        .expect("exited on SIGTERM");
    assert!(!status.success());

    let dir = sluice.dir.clone();
    drop(sluice);
    assert!(!dir.exists(), "dir kept after a passing test");
    std::fs::remove_dir_all(bin_dir).unwrap();
}

#[test]
fn start_panics_with_the_log_when_the_binary_exits_early() {
    let bin_dir = scratch("early-exit");
    let binary = script(
        &bin_dir,
        "broken-sluice",
        "#!/bin/sh\necho \"FATAL invalid value in $1\" >&2\nexit 1\n",
    );
    let panic = std::panic::catch_unwind(|| SluiceProcess::start(&binary, INI, ""))
        .expect_err("start must panic");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("FATAL invalid value in"), "{message}");
    assert!(message.contains("pgbouncer.ini"), "{message}");
    // The panicking start keeps its directory for inspection; tidy it here.
    let log = message
        .split_once("log tail (")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(path, _)| PathBuf::from(path))
        .expect("panic names the log");
    std::fs::remove_dir_all(log.parent().unwrap()).unwrap();
    std::fs::remove_dir_all(bin_dir).unwrap();
}

#[test]
fn start_uses_a_fixed_listen_port_from_the_ini() {
    let bin_dir = scratch("fixed-port");
    let port = sluice_testkit::free_port();
    let ini = INI.replace("{port}", &port.to_string());
    let sluice = SluiceProcess::start(&fake_binary(&bin_dir), &ini, "");
    assert_eq!(sluice.port, port);
    drop(sluice);
    std::fs::remove_dir_all(bin_dir).unwrap();
}

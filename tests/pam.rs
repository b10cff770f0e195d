//! auth_type=pam against the real PAM stack (pam_unix with a throwaway OS
//! user, service file in our own auth_pam_confdir). Needs root to create
//! the user and read /etc/shadow: CI runs as root; elsewhere the test says
//! so and does nothing.

#[path = "common_auth/mod.rs"]
mod common_auth;

use common_auth::*;
use std::process::Command;

const SERVICE: &str = "sluice-e2e-pam";
const USER: &str = "e2e_pam_user";
const PASSWORD: &str = "pam_pw_1";

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// auth_pam_confdir: our own directory of PAM service files.
fn confdir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("sluice-e2e-pam-{}", std::process::id()))
}

fn setup() {
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "id {USER} >/dev/null 2>&1 || useradd --no-create-home --shell /usr/sbin/nologin {USER}; \
             echo '{USER}:{PASSWORD}' | chpasswd"
        ))
        .status()
        .expect("run useradd/chpasswd");
    assert!(status.success(), "could not create the OS user");
    std::fs::create_dir_all(confdir()).expect("PAM confdir");
    std::fs::write(
        confdir().join(SERVICE),
        "auth required pam_unix.so\naccount required pam_unix.so\n",
    )
    .expect("write the PAM service file");
    // The same password on the server, for the server login PgBouncer makes with it.
    cluster().psql(
        "postgres",
        &format!(
            "DO $$ BEGIN CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'; \
             EXCEPTION WHEN duplicate_object THEN ALTER ROLE {USER} PASSWORD '{PASSWORD}'; END $$;"
        ),
    );
}

#[tokio::test]
async fn pam_checks_the_os_password_and_the_server_login_reuses_it() {
    if !is_root() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run this test as root"
        );
        eprintln!("pam test skipped: needs root to create an OS user and a PAM service");
        return;
    }
    setup();
    let sluice = sluice_testkit::SluiceProcess::start_with_env(
        &sluice_binary(),
        &ini(
            "pam",
            &standard_databases(),
            &[&format!("auth_pam_confdir = {}", confdir().display())],
        ),
        "",
        &[("SLUICE_PAM_SERVICE", SERVICE)],
    );
    assert_eq!(
        auth_request(sluice.port, USER, "sluice_db"),
        AuthRequest::Cleartext
    );
    let c = login_ok(sluice.port, USER, PASSWORD, "sluice_db").await;
    assert_eq!(scalar(&c, "SELECT current_user").await, USER);
    let (code, _) = login_error(sluice.port, USER, "not-the-password", "sluice_db").await;
    assert_eq!(code, "28P01");
    let (code, _) = login_error(sluice.port, "e2e_no_such_os_user", "x", "sluice_db").await;
    assert_eq!(code, "28P01");
    let _ = std::fs::remove_dir_all(confdir());
}

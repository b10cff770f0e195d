//! A throwaway PKI for TLS tests: a fresh CA (rcgen, ECDSA P-256) in a temp
//! directory, and server and client certificates it signs, all as PEM files.
//!
//! Layout and permissions are chosen so the PostgreSQL server (run as the
//! `postgres` OS user when the tests run as root) can read what it must:
//! the directory is 0755, certificates 0644, keys 0600 (and, for keys meant
//! for PostgreSQL, owned by the server's OS user, as PostgreSQL requires).
//! The CA key stays 0600 and owned by the test process.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use rcgen::{
    date_time_ymd, BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

use crate::cluster::ClusterSsl;
use crate::util::{
    chown_to, new_temp_dir, server_user, sh_quote, spawn_watchdog, stop_watchdog, RunAs,
};

/// A CA and the directory its certificates and keys are written to.
/// Dropping it removes the directory (and everything issued in it).
///
/// For "wrong CA" tests, make a second, unrelated CA with another
/// [`TestPki::new`].
pub struct TestPki {
    /// The directory holding every file below (mode 0755).
    pub dir: PathBuf,
    /// `<dir>/ca.crt`: the CA certificate, PEM (mode 0644). Use it as
    /// `sslrootcert`, `ssl_ca_file`, `client_tls_ca_file`, `server_tls_ca_file`.
    pub ca_cert: PathBuf,
    /// `<dir>/ca.key`: the CA private key, PKCS#8 PEM (mode 0600).
    pub ca_key: PathBuf,
    /// The CA's subject common name (unique per CA).
    pub ca_name: String,
    ca: Certificate,
    ca_keypair: KeyPair,
    watchdog: Mutex<Option<Child>>,
}

impl fmt::Debug for TestPki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestPki")
            .field("dir", &self.dir)
            .field("ca_cert", &self.ca_cert)
            .field("ca_key", &self.ca_key)
            .field("ca_name", &self.ca_name)
            .finish_non_exhaustive()
    }
}

/// File stems that would overwrite the CA's own files.
const RESERVED_STEMS: [&str; 1] = ["ca"];

impl TestPki {
    /// A fresh CA with subject CN `Sluice test CA <name> <pid>-<n>` in a new
    /// temp directory (removed on drop, or by a watchdog if the test process
    /// dies without unwinding).
    pub fn new(name: &str) -> TestPki {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let ca_name = format!("Sluice test CA {name} {}-{n}", std::process::id());

        let dir = new_temp_dir();
        set_mode(&dir, 0o755);
        let watchdog = spawn_watchdog(&format!("rm -rf {}", sh_quote(&dir.to_string_lossy())));
        // Until `pki` exists (and its Drop cleans up), clean up by hand.
        let made = (|| -> Result<(Certificate, KeyPair), rcgen::Error> {
            let mut params = CertificateParams::default();
            params.distinguished_name = dn(&ca_name);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            set_validity(&mut params);
            let key = KeyPair::generate()?;
            let cert = params.self_signed(&key)?;
            Ok((cert, key))
        })();
        let (ca, ca_keypair) = match made {
            Ok(made) => made,
            Err(e) => {
                stop_watchdog(watchdog);
                let _ = std::fs::remove_dir_all(&dir);
                panic!("sluice-testkit: cannot generate CA {ca_name:?}: {e}");
            }
        };
        let pki = TestPki {
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            dir,
            ca_name,
            ca,
            ca_keypair,
            watchdog: Mutex::new(watchdog),
        };
        write_file(&pki.ca_cert, pki.ca.pem().as_bytes(), 0o644, None);
        write_file(
            &pki.ca_key,
            pki.ca_keypair.serialize_pem().as_bytes(),
            0o600,
            None,
        );
        pki
    }

    /// The CA certificate as PEM text.
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// A server certificate signed by the CA (fresh key, EKU serverAuth),
    /// with `names` as subject alternative names: strings that parse as IP
    /// addresses become IP SANs, the rest DNS names (e.g.
    /// `&["localhost", "127.0.0.1"]`). The subject CN is the first name.
    ///
    /// Writes `<dir>/<file_stem>.crt` (0644) and `<dir>/<file_stem>.key`
    /// (PKCS#8 PEM, 0600) and returns (cert path, key path). With
    /// `for_postgres`, the key is chown'ed to the PostgreSQL server's OS user
    /// when the tests run as root (PostgreSQL refuses a key it does not own
    /// or that others can read).
    ///
    /// Issuing again with the same stem replaces the files atomically (each
    /// file is written aside and renamed), for certificate-reload tests.
    pub fn server_cert(
        &self,
        file_stem: &str,
        names: &[&str],
        for_postgres: bool,
    ) -> (PathBuf, PathBuf) {
        let cn = names.first().copied().unwrap_or("localhost");
        let owned: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(owned).unwrap_or_else(|e| {
            panic!("sluice-testkit: bad server certificate names {names:?}: {e}")
        });
        params.distinguished_name = dn(cn);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let owner = if for_postgres { server_user() } else { None };
        self.issue(file_stem, params, owner.as_ref())
    }

    /// A client certificate with subject CN = `cn` (what PostgreSQL's and
    /// PgBouncer's `cert` auth compare with the user name), EKU clientAuth,
    /// signed by the CA. Writes `<dir>/<file_stem>.crt` (0644) and
    /// `<dir>/<file_stem>.key` (0600, owned by the test process, as libpq
    /// wants for `sslkey`) and returns (cert path, key path).
    pub fn client_cert(&self, file_stem: &str, cn: &str) -> (PathBuf, PathBuf) {
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(cn);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(file_stem, params, None)
    }

    /// [`ClusterOptions::ssl`](crate::ClusterOptions::ssl) for a PostgreSQL
    /// server: a server certificate `postgres-server.crt`/`.key` for `names`
    /// (key readable by the server), and this CA as `ssl_ca_file` (so the
    /// server can check client certificates).
    pub fn cluster_ssl(&self, names: &[&str]) -> ClusterSsl {
        let (cert_file, key_file) = self.server_cert("postgres-server", names, true);
        ClusterSsl {
            cert_file,
            key_file,
            ca_file: Some(self.ca_cert.clone()),
        }
    }

    fn issue(
        &self,
        file_stem: &str,
        mut params: CertificateParams,
        key_owner: Option<&RunAs>,
    ) -> (PathBuf, PathBuf) {
        assert!(
            !file_stem.is_empty()
                && !file_stem.contains('/')
                && !RESERVED_STEMS.contains(&file_stem),
            "sluice-testkit: file stem {file_stem:?} is empty, has a '/', or names the CA's files"
        );
        set_validity(&mut params);
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate()
            .unwrap_or_else(|e| panic!("sluice-testkit: cannot generate a key: {e}"));
        let cert = params
            .signed_by(&key, &self.ca, &self.ca_keypair)
            .unwrap_or_else(|e| panic!("sluice-testkit: cannot sign {file_stem:?}: {e}"));
        let cert_path = self.dir.join(format!("{file_stem}.crt"));
        let key_path = self.dir.join(format!("{file_stem}.key"));
        write_file(&key_path, key.serialize_pem().as_bytes(), 0o600, key_owner);
        write_file(&cert_path, cert.pem().as_bytes(), 0o644, None);
        (cert_path, key_path)
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let watchdog = self
            .watchdog
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        stop_watchdog(watchdog);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// 2020-01-01 .. 2099-12-31: valid whatever the test machine's clock says
/// within reason, and no one-year rollover surprises.
fn set_validity(params: &mut CertificateParams) {
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2099, 12, 31);
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("sluice-testkit: cannot chmod {}: {e}", path.display()));
}

/// Writes `contents` to a sibling temp file created with `mode` (never
/// readable by others in between), sets the mode exactly (whatever the
/// umask), hands it to `owner`, and renames it over `path`.
fn write_file(path: &Path, contents: &[u8], mode: u32, owner: Option<&RunAs>) {
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let result = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .and_then(|mut f| f.write_all(contents).and_then(|()| f.sync_all()));
    if let Err(e) = result {
        panic!("sluice-testkit: cannot write {}: {e}", tmp.display());
    }
    set_mode(&tmp, mode);
    chown_to(&tmp, owner);
    std::fs::rename(&tmp, path).unwrap_or_else(|e| {
        panic!(
            "sluice-testkit: cannot rename {} to {}: {e}",
            tmp.display(),
            path.display()
        )
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn pem_blocks(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("-----BEGIN ")?.strip_suffix("-----"))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn ca_files_have_the_right_modes_and_go_away_on_drop() {
        let pki = TestPki::new("unit");
        assert_eq!(mode(&pki.dir), 0o755);
        assert_eq!(mode(&pki.ca_cert), 0o644);
        assert_eq!(mode(&pki.ca_key), 0o600);
        assert_eq!(pem_blocks(&pki.ca_cert), ["CERTIFICATE"]);
        assert_eq!(pem_blocks(&pki.ca_key), ["PRIVATE KEY"]);
        assert_eq!(std::fs::read_to_string(&pki.ca_cert).unwrap(), pki.ca_pem());
        let dir = pki.dir.clone();
        drop(pki);
        assert!(!dir.exists(), "{} left behind", dir.display());
    }

    #[test]
    fn cas_are_distinct() {
        let a = TestPki::new("same");
        let b = TestPki::new("same");
        assert_ne!(a.dir, b.dir);
        assert_ne!(a.ca_name, b.ca_name);
        assert_ne!(a.ca_pem(), b.ca_pem());
    }

    #[test]
    fn server_and_client_certs_are_written_with_private_keys() {
        let pki = TestPki::new("unit");
        let (cert, key) = pki.server_cert("srv", &["localhost", "127.0.0.1", "::1"], true);
        assert_eq!(cert, pki.dir.join("srv.crt"));
        assert_eq!(key, pki.dir.join("srv.key"));
        assert_eq!(mode(&cert), 0o644);
        assert_eq!(mode(&key), 0o600);
        assert_eq!(pem_blocks(&cert), ["CERTIFICATE"]);
        assert_eq!(pem_blocks(&key), ["PRIVATE KEY"]);
        let expected_owner = server_user().map_or_else(
            // SAFETY: geteuid has no preconditions.
            || unsafe { libc::geteuid() },
            |u| u.uid,
        );
        assert_eq!(std::fs::metadata(&key).unwrap().uid(), expected_owner);

        let (cert, key) = pki.client_cert("alice", "alice");
        assert_eq!(mode(&cert), 0o644);
        assert_eq!(mode(&key), 0o600);
        // SAFETY: as above.
        let me = unsafe { libc::geteuid() };
        assert_eq!(std::fs::metadata(&key).unwrap().uid(), me);

        // No temp files left over.
        let names: Vec<String> = std::fs::read_dir(&pki.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    }

    #[test]
    fn reissuing_replaces_the_files() {
        let pki = TestPki::new("unit");
        let (cert, _) = pki.server_cert("srv", &["localhost"], false);
        let first = std::fs::read_to_string(&cert).unwrap();
        let (again, _) = pki.server_cert("srv", &["localhost"], false);
        assert_eq!(cert, again);
        assert_ne!(first, std::fs::read_to_string(&cert).unwrap());
    }

    #[test]
    #[should_panic(expected = "names the CA's files")]
    fn the_ca_stem_is_reserved() {
        let pki = TestPki::new("unit");
        pki.client_cert("ca", "x");
    }

    #[test]
    fn cluster_ssl_points_at_a_postgres_key_and_the_ca() {
        let pki = TestPki::new("unit");
        let ssl = pki.cluster_ssl(&["localhost"]);
        assert_eq!(ssl.ca_file.as_deref(), Some(pki.ca_cert.as_path()));
        assert!(ssl.cert_file.is_file() && ssl.key_file.is_file());
    }
}

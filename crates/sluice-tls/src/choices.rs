//! PgBouncer's protocol, cipher and key-exchange settings, turned into a
//! rustls protocol-version list and a `CryptoProvider` (ring). What cannot be
//! honoured exactly becomes a warning, or an error where going on would
//! silently use something the operator ruled out; nothing is ever weakened.

use std::sync::Arc;

use rustls::crypto::ring::{cipher_suite, default_provider, kx_group};
use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};

use crate::TlsError;

/// The names of one side's settings, for messages.
#[derive(Clone, Copy)]
pub(crate) struct Keys {
    pub protocols: &'static str,
    pub ciphers: &'static str,
    pub tls13_ciphers: &'static str,
}

pub(crate) const CLIENT_KEYS: Keys = Keys {
    protocols: "client_tls_protocols",
    ciphers: "client_tls_ciphers",
    tls13_ciphers: "client_tls13_ciphers",
};

pub(crate) const SERVER_KEYS: Keys = Keys {
    protocols: "server_tls_protocols",
    ciphers: "server_tls_ciphers",
    tls13_ciphers: "server_tls13_ciphers",
};

/// Protocol versions and the crypto provider for one side.
pub(crate) struct Choices {
    pub versions: Vec<&'static SupportedProtocolVersion>,
    pub provider: Arc<CryptoProvider>,
}

/// The raw settings of one side. `ecdhcurve`/`dheparams` exist only towards
/// clients (PgBouncer has no server_tls_ecdhcurve).
pub(crate) struct Raw<'a> {
    pub protocols: &'a str,
    pub ciphers: &'a str,
    pub tls13_ciphers: &'a str,
    pub ecdhcurve: Option<&'a str>,
    pub dheparams: Option<&'a str>,
}

pub(crate) fn build(
    keys: Keys,
    raw: &Raw,
    warnings: &mut Vec<String>,
) -> Result<Choices, TlsError> {
    let mask = parse_protocols(keys.protocols, raw.protocols)?;
    let versions = versions_for(keys.protocols, raw.protocols, mask, warnings)?;
    let mut suites = tls13_suites(keys.tls13_ciphers, raw.tls13_ciphers, warnings)?;
    suites.extend(tls12_suites(keys.ciphers, raw.ciphers, warnings));
    let kx_groups = match raw.ecdhcurve {
        Some(value) => kx_groups("client_tls_ecdhcurve", value, warnings)?,
        None => default_provider().kx_groups,
    };
    if let Some(value) = raw.dheparams {
        check_dheparams("client_tls_dheparams", value, warnings);
    }
    let provider = CryptoProvider {
        cipher_suites: suites,
        kx_groups,
        ..default_provider()
    };
    Ok(Choices {
        versions,
        provider: Arc::new(provider),
    })
}

fn invalid(setting: &'static str, value: &str, reason: impl Into<String>) -> TlsError {
    TlsError::InvalidSetting {
        setting,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Items of a list setting: separated by `,`, `:` or white space.
fn items(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(|c: char| c == ',' || c == ':' || c.is_whitespace())
        .filter(|item| !item.is_empty())
}

// ---------------------------------------------------------------------------
// *_tls_protocols

pub(crate) const TLS10: u8 = 1;
pub(crate) const TLS11: u8 = 2;
pub(crate) const TLS12: u8 = 4;
pub(crate) const TLS13: u8 = 8;
const ALL_VERSIONS: u8 = TLS10 | TLS11 | TLS12 | TLS13;
const SECURE_VERSIONS: u8 = TLS12 | TLS13;

/// PgBouncer's (libtls's) protocol syntax, as a bit mask of TLS10..TLS13:
/// items separated by `,` or `:` (Sluice also takes white space), each
/// `tlsv1.0`, `tlsv1.1`, `tlsv1.2`, `tlsv1.3`, `tlsv1` (all four), `all` or
/// `legacy` (all four), `secure` or `default` (1.2 and 1.3), any case; `!`
/// before an item removes it (a list starting with `!` starts from all);
/// `+` before an item is accepted and means the same as no prefix. Empty
/// means `secure`, as in PgBouncer.
pub(crate) fn parse_protocols(setting: &'static str, value: &str) -> Result<u8, TlsError> {
    let mut mask = 0u8;
    let mut any = false;
    for item in items(value) {
        any = true;
        let (negate, name) = match item.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, item.strip_prefix('+').unwrap_or(item)),
        };
        if negate && mask == 0 {
            mask = ALL_VERSIONS;
        }
        let bits = match name.to_ascii_lowercase().as_str() {
            "all" | "legacy" | "tlsv1" => ALL_VERSIONS,
            "secure" | "default" => SECURE_VERSIONS,
            "tlsv1.0" => TLS10,
            "tlsv1.1" => TLS11,
            "tlsv1.2" => TLS12,
            "tlsv1.3" => TLS13,
            _ => {
                return Err(invalid(
                    setting,
                    value,
                    format!(
                        "unknown protocol \"{name}\"; expected a list of tlsv1.0, tlsv1.1, \
                         tlsv1.2, tlsv1.3, or all, secure, default, legacy (\"!\" before an \
                         item excludes it)"
                    ),
                ))
            }
        };
        if negate {
            mask &= !bits;
        } else {
            mask |= bits;
        }
    }
    if !any {
        mask = SECURE_VERSIONS;
    }
    Ok(mask)
}

fn versions_for(
    setting: &'static str,
    value: &str,
    mask: u8,
    warnings: &mut Vec<String>,
) -> Result<Vec<&'static SupportedProtocolVersion>, TlsError> {
    if mask == 0 {
        return Err(invalid(setting, value, "no protocol version is left"));
    }
    let old: Vec<&str> = [(TLS10, "TLS 1.0"), (TLS11, "TLS 1.1")]
        .into_iter()
        .filter(|(bit, _)| mask & bit != 0)
        .map(|(_, name)| name)
        .collect();
    if mask & SECURE_VERSIONS == 0 {
        return Err(invalid(
            setting,
            value,
            format!(
                "only {} requested, which rustls does not implement (it has TLS 1.2 and 1.3 \
                 only); refusing rather than using another version",
                old.join(" and ")
            ),
        ));
    }
    let mut versions = Vec::new();
    let mut names = Vec::new();
    if mask & TLS13 != 0 {
        versions.push(&rustls::version::TLS13);
        names.push("TLS 1.3");
    }
    if mask & TLS12 != 0 {
        versions.push(&rustls::version::TLS12);
        names.push("TLS 1.2");
    }
    if !old.is_empty() {
        warnings.push(format!(
            "{setting} = \"{value}\": {} not available with rustls; using only {}",
            old.join(" and "),
            names.join(" and ")
        ));
    }
    Ok(versions)
}

// ---------------------------------------------------------------------------
// *_tls_ciphers (TLS 1.2)

#[derive(Clone, Copy, PartialEq, Eq)]
enum Auth {
    Rsa,
    Ecdsa,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Enc {
    Aes128Gcm,
    Aes256Gcm,
    Chacha20,
}

/// The TLS 1.2 suites rustls (ring) implements, in rustls's preference
/// order, with their OpenSSL names.
struct Suite12 {
    suite: SupportedCipherSuite,
    openssl: &'static str,
    auth: Auth,
    enc: Enc,
}

fn tls12_table() -> [Suite12; 6] {
    [
        Suite12 {
            suite: cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            openssl: "ECDHE-ECDSA-AES256-GCM-SHA384",
            auth: Auth::Ecdsa,
            enc: Enc::Aes256Gcm,
        },
        Suite12 {
            suite: cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            openssl: "ECDHE-ECDSA-AES128-GCM-SHA256",
            auth: Auth::Ecdsa,
            enc: Enc::Aes128Gcm,
        },
        Suite12 {
            suite: cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            openssl: "ECDHE-ECDSA-CHACHA20-POLY1305",
            auth: Auth::Ecdsa,
            enc: Enc::Chacha20,
        },
        Suite12 {
            suite: cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            openssl: "ECDHE-RSA-AES256-GCM-SHA384",
            auth: Auth::Rsa,
            enc: Enc::Aes256Gcm,
        },
        Suite12 {
            suite: cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            openssl: "ECDHE-RSA-AES128-GCM-SHA256",
            auth: Auth::Rsa,
            enc: Enc::Aes128Gcm,
        },
        Suite12 {
            suite: cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            openssl: "ECDHE-RSA-CHACHA20-POLY1305",
            auth: Auth::Rsa,
            enc: Enc::Chacha20,
        },
    ]
}

fn default_tls12_suites() -> Vec<SupportedCipherSuite> {
    tls12_table().into_iter().map(|s| s.suite).collect()
}

fn default_tls13_suites() -> Vec<SupportedCipherSuite> {
    vec![
        cipher_suite::TLS13_AES_256_GCM_SHA384,
        cipher_suite::TLS13_AES_128_GCM_SHA256,
        cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
    ]
}

fn suite_names(suites: &[SupportedCipherSuite]) -> String {
    suites
        .iter()
        .map(|s| format!("{:?}", s.suite()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// OpenSSL cipher-string aliases that select only suites rustls never
/// offers (so including them selects nothing, and excluding them is
/// honoured as is).
const ALIASES_OUTSIDE_RUSTLS: &[&str] = &[
    "aNULL",
    "eNULL",
    "NULL",
    "COMPLEMENTOFDEFAULT",
    "LOW",
    "MEDIUM",
    "EXP",
    "EXPORT",
    "EXPORT40",
    "EXPORT56",
    "RC4",
    "RC2",
    "DES",
    "3DES",
    "IDEA",
    "SEED",
    "CAMELLIA",
    "CAMELLIA128",
    "CAMELLIA256",
    "ARIA",
    "ARIA128",
    "ARIA256",
    "ARIAGCM",
    "AESCCM",
    "AESCCM8",
    "CCM",
    "CCM8",
    "MD5",
    "SHA1",
    "SHA",
    "kRSA",
    "RSA",
    "DHE",
    "EDH",
    "kDHE",
    "kEDH",
    "DH",
    "kDH",
    "kDHr",
    "kDHd",
    "ADH",
    "AECDH",
    "aDSS",
    "DSS",
    "aDH",
    "ECDH",
    "kECDH",
    "kECDHr",
    "kECDHe",
    "aECDH",
    "PSK",
    "kPSK",
    "kECDHEPSK",
    "kDHEPSK",
    "kRSAPSK",
    "aPSK",
    "SRP",
    "kSRP",
    "aSRP",
    "aGOST",
    "aGOST01",
    "kGOST",
    "GOST89MAC",
    "GOST94",
    "SSLv3",
    "TLSv1",
    "TLSv1.0",
];

/// Which rows of the TLS 1.2 table an OpenSSL cipher-string element selects
/// (bit i = row i), or `None` when Sluice cannot interpret it.
fn select_tls12(element: &str) -> Option<u8> {
    if element.contains('+') {
        // `A+B`: suites matching both.
        let mut mask = 0b11_1111u8;
        for part in element.split('+') {
            mask &= select_one(part)?;
        }
        return Some(mask);
    }
    select_one(element)
}

fn select_one(name: &str) -> Option<u8> {
    let table = tls12_table();
    let by = |keep: &dyn Fn(&Suite12) -> bool| -> u8 {
        table
            .iter()
            .enumerate()
            .filter(|(_, s)| keep(s))
            .fold(0u8, |mask, (i, _)| mask | (1 << i))
    };
    if let Some(i) = table.iter().position(|s| {
        s.openssl.eq_ignore_ascii_case(name)
            || format!("{:?}", s.suite.suite()).eq_ignore_ascii_case(name)
    }) {
        return Some(1 << i);
    }
    let upper = name.to_ascii_uppercase();
    let mask = match upper.as_str() {
        "ALL" | "DEFAULT" | "HIGH" | "ECDHE" | "EECDH" | "KECDHE" | "KEECDH" | "AEAD"
        | "TLSV1.2" | "COMPLEMENTOFALL" => by(&|_| true),
        "ARSA" => by(&|s| s.auth == Auth::Rsa),
        "AECDSA" | "ECDSA" => by(&|s| s.auth == Auth::Ecdsa),
        "AES" | "AESGCM" => by(&|s| s.enc != Enc::Chacha20),
        "AES128" => by(&|s| s.enc == Enc::Aes128Gcm),
        "AES256" => by(&|s| s.enc == Enc::Aes256Gcm),
        "CHACHA20" => by(&|s| s.enc == Enc::Chacha20),
        "SHA256" => by(&|s| s.enc != Enc::Aes256Gcm),
        "SHA384" => by(&|s| s.enc == Enc::Aes256Gcm),
        _ if ALIASES_OUTSIDE_RUSTLS
            .iter()
            .any(|alias| alias.eq_ignore_ascii_case(name)) =>
        {
            0
        }
        // A cipher-suite name (OpenSSL `AES128-SHA`, IANA `TLS_RSA_...`)
        // that is not one of rustls's suites: it selects nothing here.
        _ if (name.contains('-') || upper.starts_with("TLS_"))
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            0
        }
        _ => return None,
    };
    Some(mask)
}

/// `*_tls_ciphers`: PgBouncer's keywords, or an OpenSSL cipher string
/// evaluated over the TLS 1.2 suites rustls has.
fn tls12_suites(
    setting: &'static str,
    value: &str,
    warnings: &mut Vec<String>,
) -> Vec<SupportedCipherSuite> {
    let trimmed = value.trim();
    match trimmed.to_ascii_lowercase().as_str() {
        "" | "default" | "secure" | "fast" | "normal" => return default_tls12_suites(),
        "compat" | "legacy" | "all" | "insecure" => {
            warnings.push(format!(
                "{setting} = \"{trimmed}\" asks for legacy or weak cipher suites, which rustls \
                 does not implement; using rustls's default suites (ECDHE with AES-GCM or \
                 ChaCha20-Poly1305), which is not weaker, but very old clients may fail to \
                 connect"
            ));
            return default_tls12_suites();
        }
        _ => {}
    }

    let table = tls12_table();
    let mut chosen: Vec<usize> = Vec::new();
    let mut killed = 0u8;
    let mut not_understood: Vec<&str> = Vec::new();
    for element in items(trimmed) {
        if let Some(directive) = element.strip_prefix('@') {
            let upper = directive.to_ascii_uppercase();
            if upper == "STRENGTH" || upper.starts_with("SECLEVEL=") {
                continue; // ordering/policy hints; every rustls suite passes them
            }
            not_understood.push(element);
            continue;
        }
        let (op, name) = match element.as_bytes()[0] {
            b'!' | b'-' | b'+' => (element.as_bytes()[0], &element[1..]),
            _ => (b' ', element),
        };
        let Some(mask) = select_tls12(name) else {
            not_understood.push(element);
            continue;
        };
        let selected = |i: &usize| mask & (1 << i) != 0;
        match op {
            b'!' => {
                chosen.retain(|i| !selected(i));
                killed |= mask;
            }
            b'-' => chosen.retain(|i| !selected(i)),
            b'+' => {
                let (moved, kept): (Vec<usize>, Vec<usize>) =
                    chosen.iter().partition(|i| selected(i));
                chosen = kept;
                chosen.extend(moved);
            }
            _ => {
                for i in 0..table.len() {
                    if selected(&i) && killed & (1 << i) == 0 && !chosen.contains(&i) {
                        chosen.push(i);
                    }
                }
            }
        }
    }
    let defaults = default_tls12_suites();
    if !not_understood.is_empty() {
        warnings.push(format!(
            "{setting} = \"{trimmed}\" is not honoured: Sluice cannot map {} onto rustls's \
             suites; using rustls's secure default TLS 1.2 suites ({})",
            not_understood.join(", "),
            suite_names(&defaults)
        ));
        return defaults;
    }
    if chosen.is_empty() {
        warnings.push(format!(
            "{setting} = \"{trimmed}\" selects no TLS 1.2 cipher suite that rustls implements \
             (it has only ECDHE with AES-GCM or ChaCha20-Poly1305), so it is not honoured; \
             using rustls's secure default suites ({})",
            suite_names(&defaults)
        ));
        return defaults;
    }
    chosen.into_iter().map(|i| table[i].suite).collect()
}

// ---------------------------------------------------------------------------
// *_tls13_ciphers

fn tls13_suites(
    setting: &'static str,
    value: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<SupportedCipherSuite>, TlsError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Ok(default_tls13_suites());
    }
    let mut chosen: Vec<SupportedCipherSuite> = Vec::new();
    let mut missing: Vec<&str> = Vec::new();
    for name in items(trimmed) {
        let suite = match name.to_ascii_uppercase().as_str() {
            "TLS_AES_256_GCM_SHA384" => cipher_suite::TLS13_AES_256_GCM_SHA384,
            "TLS_AES_128_GCM_SHA256" => cipher_suite::TLS13_AES_128_GCM_SHA256,
            "TLS_CHACHA20_POLY1305_SHA256" => cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
            "TLS_AES_128_CCM_SHA256" | "TLS_AES_128_CCM_8_SHA256" => {
                missing.push(name);
                continue;
            }
            _ => {
                return Err(invalid(
                    setting,
                    value,
                    format!(
                        "unknown TLS 1.3 cipher suite \"{name}\"; expected \
                         TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256, \
                         TLS_AES_128_GCM_SHA256, TLS_AES_128_CCM_8_SHA256 or \
                         TLS_AES_128_CCM_SHA256"
                    ),
                ))
            }
        };
        if !chosen.iter().any(|c| c.suite() == suite.suite()) {
            chosen.push(suite);
        }
    }
    if chosen.is_empty() {
        let defaults = default_tls13_suites();
        warnings.push(format!(
            "{setting} = \"{trimmed}\": rustls does not implement {}, so it is not honoured; \
             using rustls's default TLS 1.3 suites ({}), which are not weaker",
            missing.join(", "),
            suite_names(&defaults)
        ));
        return Ok(defaults);
    }
    if !missing.is_empty() {
        warnings.push(format!(
            "{setting} = \"{trimmed}\": rustls does not implement {}; using only {}",
            missing.join(", "),
            suite_names(&chosen)
        ));
    }
    Ok(chosen)
}

// ---------------------------------------------------------------------------
// client_tls_ecdhcurve, client_tls_dheparams

fn kx_groups(
    setting: &'static str,
    value: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<&'static dyn SupportedKxGroup>, TlsError> {
    let trimmed = value.trim();
    match trimmed.to_ascii_lowercase().as_str() {
        "" | "auto" => return Ok(default_provider().kx_groups),
        "none" => {
            warnings.push(format!(
                "{setting} = \"none\" is not honoured: ECDHE is the only key exchange rustls \
                 has (there is no static-RSA one to fall back to, which would be weaker), so \
                 rustls's default groups are used"
            ));
            return Ok(default_provider().kx_groups);
        }
        _ => {}
    }
    let mut groups: Vec<&'static dyn SupportedKxGroup> = Vec::new();
    let mut missing: Vec<&str> = Vec::new();
    for name in items(trimmed) {
        let group: &'static dyn SupportedKxGroup = match name.to_ascii_lowercase().as_str() {
            "prime256v1" | "secp256r1" | "p-256" | "p256" => kx_group::SECP256R1,
            "secp384r1" | "p-384" | "p384" => kx_group::SECP384R1,
            "x25519" => kx_group::X25519,
            "secp521r1" | "p-521" | "p521" | "x448" => {
                missing.push(name);
                continue;
            }
            _ => {
                return Err(invalid(
                    setting,
                    value,
                    format!(
                        "unknown curve \"{name}\"; expected auto, none, or prime256v1 \
                         (secp256r1, P-256), secp384r1 (P-384), x25519"
                    ),
                ))
            }
        };
        if !groups.iter().any(|g| g.name() == group.name()) {
            groups.push(group);
        }
    }
    if groups.is_empty() {
        return Err(invalid(
            setting,
            value,
            format!(
                "rustls (ring) does not implement {}; it has prime256v1 (P-256), secp384r1 \
                 (P-384) and x25519",
                missing.join(", ")
            ),
        ));
    }
    if !missing.is_empty() {
        warnings.push(format!(
            "{setting} = \"{trimmed}\": rustls (ring) does not implement {}; using only the \
             others",
            missing.join(", ")
        ));
    }
    Ok(groups)
}

fn check_dheparams(setting: &'static str, value: &str, warnings: &mut Vec<String>) {
    let trimmed = value.trim();
    match trimmed.to_ascii_lowercase().as_str() {
        "" | "none" | "auto" => {}
        _ => warnings.push(format!(
            "{setting} = \"{trimmed}\" is ignored: rustls offers no finite-field DHE suites \
             (only ECDHE), which is not weaker"
        )),
    }
}

#[cfg(test)]
pub(crate) fn tls12_suites_for_test(value: &str) -> (Vec<SupportedCipherSuite>, Vec<String>) {
    let mut warnings = Vec::new();
    let suites = tls12_suites("client_tls_ciphers", value, &mut warnings);
    (suites, warnings)
}

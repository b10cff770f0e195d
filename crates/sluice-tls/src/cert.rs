//! Reading facts out of certificates: the client's common name (for
//! `auth_type=cert`) and the `tls-server-end-point` channel-binding data
//! (for SCRAM-SHA-256-PLUS).

use ring::digest;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::signature_algorithm::SignatureAlgorithm;

/// The first common name (CN) in the subject of a DER certificate, as
/// PostgreSQL and PgBouncer use it for certificate authentication. `None`
/// when the certificate does not parse, has no CN, or its CN is not a
/// string.
pub fn peer_common_name(cert_der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(cert_der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}

const SHA1: &str = "1.3.14.3.2.26";
const SHA256: &str = "2.16.840.1.101.3.4.2.1";
const SHA384: &str = "2.16.840.1.101.3.4.2.2";
const SHA512: &str = "2.16.840.1.101.3.4.2.3";

/// RFC 5929 `tls-server-end-point`: the hash of the server's DER
/// certificate, with the hash function of the certificate's signature
/// algorithm, where MD5 and SHA-1 are replaced by SHA-256. This is what
/// PostgreSQL's server and libpq compute for SCRAM-SHA-256-PLUS. `None`
/// when the certificate does not parse or its signature algorithm has no
/// such hash (Ed25519, SHA-224, DSA, unknown), as PostgreSQL also gives up
/// there.
pub fn tls_server_end_point(cert_der: &[u8]) -> Option<Vec<u8>> {
    let (_, cert) = X509Certificate::from_der(cert_der).ok()?;
    let algorithm = &cert.signature_algorithm;
    let oid = algorithm.algorithm.to_id_string();
    let hash = match oid.as_str() {
        // md5WithRSA, sha1WithRSA, ecdsa-with-SHA1 → SHA-256 (RFC 5929 §4.1)
        "1.2.840.113549.1.1.4" | "1.2.840.113549.1.1.5" | "1.2.840.10045.4.1" => SHA256,
        // sha256WithRSA, ecdsa-with-SHA256
        "1.2.840.113549.1.1.11" | "1.2.840.10045.4.3.2" => SHA256,
        // sha384WithRSA, ecdsa-with-SHA384
        "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" => SHA384,
        // sha512WithRSA, ecdsa-with-SHA512
        "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" => SHA512,
        // RSASSA-PSS: the hash is in the parameters.
        "1.2.840.113549.1.1.10" => match SignatureAlgorithm::try_from(algorithm).ok()? {
            SignatureAlgorithm::RSASSA_PSS(params) => {
                match params.hash_algorithm_oid().to_id_string().as_str() {
                    SHA1 | SHA256 => SHA256,
                    SHA384 => SHA384,
                    SHA512 => SHA512,
                    _ => return None,
                }
            }
            _ => return None,
        },
        _ => return None,
    };
    let algorithm = match hash {
        SHA256 => &digest::SHA256,
        SHA384 => &digest::SHA384,
        _ => &digest::SHA512,
    };
    Some(digest::digest(algorithm, cert_der).as_ref().to_vec())
}

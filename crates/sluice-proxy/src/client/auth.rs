//! Client authentication against the auth_file, per auth_type: trust, any,
//! plain, md5 and scram-sha-256 (md5 switches to SCRAM for SCRAM secrets,
//! as PgBouncer does). Unknown users go through the same exchange and fail
//! the same way, so user names cannot be probed.

use std::sync::Arc;

use sluice_auth::{
    verify_md5_response, verify_plain_password, ScramServer, ScramVerifiers, Secret,
};
use sluice_config::AuthType;
use sluice_protocol::{builders, frontend};
use tokio::io::{AsyncRead, AsyncWrite};

use super::io::ClientIo;
use crate::errors::ClientError;

/// What a successful login leaves behind.
#[derive(Default)]
pub struct AuthOutcome {
    /// ClientKey from a SCRAM login, for SCRAM pass-through to servers.
    pub scram_client_key: Option<[u8; 32]>,
    /// The cleartext password of a PAM login: PgBouncer logs in to the
    /// server with it too.
    pub password: Option<String>,
}

fn password_failed() -> ClientError {
    ClientError::fatal("28P01", "password authentication failed")
}

fn sasl_failed() -> ClientError {
    ClientError::fatal("28P01", "SASL authentication failed")
}

/// Everything one login's authentication needs.
pub struct AuthRequest<'a> {
    pub auth_type: AuthType,
    pub user: &'a str,
    pub secret: Option<&'a Secret>,
    /// CN of the client's certificate (TLS).
    pub peer_cn: Option<&'a str>,
    /// tls-server-end-point hash for SCRAM-SHA-256-PLUS (TLS).
    pub channel_binding: Option<Vec<u8>>,
    pub pam_confdir: Option<std::path::PathBuf>,
    /// SCRAM verifiers derived from plaintext passwords, kept per process.
    pub verifiers: &'a Arc<ScramVerifiers>,
}

pub async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut ClientIo<S>,
    req: AuthRequest<'_>,
) -> Result<AuthOutcome, ClientError> {
    let AuthRequest {
        auth_type,
        user,
        secret,
        peer_cn,
        channel_binding,
        pam_confdir,
        verifiers,
    } = req;
    match auth_type {
        AuthType::Any => Ok(AuthOutcome::default()),
        // The certificate was verified against client_tls_ca_file during
        // the handshake; its CN must name the user.
        AuthType::Cert => match peer_cn {
            Some(cn) if cn == user => Ok(AuthOutcome::default()),
            _ => Err(ClientError::fatal(
                "28000",
                "certificate authentication failed",
            )),
        },
        AuthType::Trust => match secret {
            Some(_) => Ok(AuthOutcome::default()),
            None => Err(ClientError::fatal(
                "28000",
                "\"trust\" authentication failed",
            )),
        },
        AuthType::Plain => {
            builders::put_auth_cleartext(&mut io.wbuf);
            io.flush().await?;
            let m = read_password_message(io).await?;
            let pw = frontend::password(m.body())?.to_string();
            let (Some(s), false) = (secret.cloned(), pw.is_empty()) else {
                return Err(password_failed());
            };
            let user = user.to_string();
            let ok = tokio::task::spawn_blocking(move || verify_plain_password(&s, &user, &pw))
                .await
                .unwrap_or(false);
            if ok {
                Ok(AuthOutcome::default())
            } else {
                Err(password_failed())
            }
        }
        AuthType::Md5 if !matches!(secret, Some(Secret::Scram(_))) => {
            let salt: [u8; 4] = rand::random();
            builders::put_auth_md5(&mut io.wbuf, salt);
            io.flush().await?;
            let m = read_password_message(io).await?;
            let resp = frontend::password(m.body())?;
            match secret {
                Some(s) if verify_md5_response(s, user, salt, resp) => Ok(AuthOutcome::default()),
                _ => Err(password_failed()),
            }
        }
        AuthType::Md5 | AuthType::ScramSha256 => {
            scram(io, user, secret, channel_binding, verifiers).await
        }
        AuthType::Pam => {
            builders::put_auth_cleartext(&mut io.wbuf);
            io.flush().await?;
            let m = read_password_message(io).await?;
            let pw = frontend::password(m.body())?.to_string();
            if pw.is_empty() {
                return Err(password_failed());
            }
            let (u, p) = (user.to_string(), pw.clone());
            let r = tokio::task::spawn_blocking(move || {
                sluice_auth::pam::pam_authenticate(
                    &sluice_auth::pam::pam_service(),
                    &u,
                    &p,
                    pam_confdir.as_deref(),
                )
            })
            .await
            .map_err(|_| password_failed())?;
            match r {
                Ok(()) => Ok(AuthOutcome {
                    scram_client_key: None,
                    password: Some(pw),
                }),
                Err(e @ sluice_auth::pam::PamError::Unavailable(_)) => {
                    tracing::error!("{e}");
                    Err(ClientError::fatal("08P01", "bouncer config error"))
                }
                Err(_) => Err(password_failed()),
            }
        }
        other => Err(ClientError::fatal(
            "28000",
            format!("auth_type {} is not supported yet", other.as_str()),
        )),
    }
}

async fn read_password_message<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut ClientIo<S>,
) -> Result<sluice_protocol::Message, ClientError> {
    let m = io.read_message().await?;
    if m.tag() != frontend::PASSWORD {
        return Err(ClientError::protocol_violation(format!(
            "expected password response, got message type {:?}",
            m.tag() as char
        )));
    }
    Ok(m)
}

/// SCRAM-SHA-256, and over TLS also SCRAM-SHA-256-PLUS (channel binding
/// to our certificate, `channel_binding` = its tls-server-end-point hash).
async fn scram<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut ClientIo<S>,
    user: &str,
    secret: Option<&Secret>,
    channel_binding: Option<Vec<u8>>,
    verifiers: &Arc<ScramVerifiers>,
) -> Result<AuthOutcome, ClientError> {
    const ITERATIONS: u32 = 4096;
    // An unknown user or an md5-only secret still gets a full exchange
    // against a mock verifier (same salt on every try), then fails.
    let (real, verifier) = match secret {
        Some(Secret::Scram(s)) => (true, s.clone()),
        Some(Secret::Plain(p)) if p.is_empty() => return Err(sasl_failed()),
        Some(Secret::Plain(p)) => match verifiers.cached(p, ITERATIONS) {
            Some(v) => (true, v),
            None => {
                // The first login of this password: PBKDF2, thousands of
                // HMAC rounds, off the async workers. Later ones reuse it.
                let (v, p) = (verifiers.clone(), p.clone());
                let derived = tokio::task::spawn_blocking(move || v.derive(&p, ITERATIONS))
                    .await
                    .map_err(|_| sasl_failed())?;
                (true, derived)
            }
        },
        Some(Secret::Md5(_)) => {
            tracing::warn!(
                "SCRAM login with an md5 secret cannot succeed: store the plaintext or the SCRAM secret"
            );
            (false, verifiers.mock_for(user, ITERATIONS))
        }
        None => (false, verifiers.mock_for(user, ITERATIONS)),
    };
    let verifier = Secret::Scram(verifier);
    let mut server = match channel_binding {
        Some(end_point) => ScramServer::with_channel_binding(&verifier, end_point),
        None => ScramServer::new(&verifier),
    }
    .map_err(|_| sasl_failed())?;
    builders::put_auth_sasl(&mut io.wbuf, server.mechanisms());
    io.flush().await?;

    let m = read_password_message(io).await?;
    let (mech, data) = frontend::sasl_initial_response(m.body())?;
    if server.set_mechanism(mech).is_err() {
        return Err(ClientError::fatal(
            "28000",
            "client selected an invalid SASL authentication mechanism",
        ));
    }
    let first = server
        .handle_client_first(data)
        .map_err(|_| sasl_failed())?;
    builders::put_auth_sasl_continue(&mut io.wbuf, &first);
    io.flush().await?;

    let m = read_password_message(io).await?;
    let fin = server
        .handle_client_final(m.body())
        .map_err(|_| password_failed())?;
    if !real {
        return Err(password_failed());
    }
    builders::put_auth_sasl_final(&mut io.wbuf, &fin);
    Ok(AuthOutcome {
        scram_client_key: server.client_key(),
        password: None,
    })
}

//! Client authentication against the auth_file, per auth_type: trust, any,
//! plain, md5 and scram-sha-256 (md5 switches to SCRAM for SCRAM secrets,
//! as PgBouncer does). Unknown users go through the same exchange and fail
//! the same way, so user names cannot be probed.

use sluice_auth::{verify_md5_response, verify_plain_password, ScramServer, Secret};
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

pub async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut ClientIo<S>,
    auth_type: AuthType,
    user: &str,
    secret: Option<&Secret>,
    peer_cn: Option<&str>,
    channel_binding: Option<Vec<u8>>,
    pam_confdir: Option<std::path::PathBuf>,
) -> Result<AuthOutcome, ClientError> {
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
        AuthType::Md5 | AuthType::ScramSha256 => scram(io, secret, channel_binding).await,
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
    secret: Option<&Secret>,
    channel_binding: Option<Vec<u8>>,
) -> Result<AuthOutcome, ClientError> {
    // An unknown user or an md5-only secret still gets a full exchange
    // against a throwaway secret, then fails.
    let mock = Secret::Plain(format!("{:032x}", rand::random::<u128>()));
    let (real, secret) = match secret {
        Some(s @ (Secret::Plain(_) | Secret::Scram(_))) => (true, s),
        Some(Secret::Md5(_)) => {
            tracing::warn!(
                "SCRAM login with an md5 secret cannot succeed: store the plaintext or the SCRAM secret"
            );
            (false, &mock)
        }
        None => (false, &mock),
    };
    // Deriving keys from a plaintext secret takes thousands of HMAC rounds:
    // keep that off the async workers.
    let owned = secret.clone();
    let mut server = tokio::task::spawn_blocking(move || match channel_binding {
        Some(end_point) => ScramServer::with_channel_binding(&owned, end_point),
        None => ScramServer::new(&owned),
    })
    .await
    .map_err(|_| sasl_failed())?
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

//! auth_type=pam: checks a user name and cleartext password with the
//! system's PAM stack (service `pgbouncer`, as PgBouncer uses). libpam is
//! opened at run time (dlopen of libpam.so.0), so building Sluice needs no
//! PAM headers and a machine without libpam only loses this auth type.
//! The call blocks: run it on a blocking thread.

use std::ffi::{c_char, c_int, c_void, CString};
use std::ptr;

/// The PAM service PgBouncer uses; `SLUICE_PAM_SERVICE` overrides it.
pub const DEFAULT_PAM_SERVICE: &str = "pgbouncer";

const PAM_SUCCESS: c_int = 0;
const PAM_CONV_ERR: c_int = 19;
const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;
const PAM_SILENT: c_int = 0x8000;

#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

type ConvFn = unsafe extern "C" fn(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int;

#[repr(C)]
struct PamConv {
    conv: ConvFn,
    appdata_ptr: *mut c_void,
}

#[derive(Debug, thiserror::Error)]
pub enum PamError {
    #[error("PAM is not available: {0}")]
    Unavailable(String),
    #[error("PAM authentication failed (code {0})")]
    Failed(c_int),
    #[error("user name or password contains a NUL byte")]
    BadInput,
}

/// Answers every prompt with the password (PAM frees what we allocate).
unsafe extern "C" fn conversation(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    if num_msg <= 0 || msg.is_null() || resp.is_null() || appdata.is_null() {
        return PAM_CONV_ERR;
    }
    let n = num_msg as usize;
    // SAFETY: PAM hands us `n` message pointers and expects a calloc'ed
    // array of `n` responses it will free; appdata is our CString.
    unsafe {
        let out = libc::calloc(n, std::mem::size_of::<PamResponse>()) as *mut PamResponse;
        if out.is_null() {
            return PAM_CONV_ERR;
        }
        let password = appdata as *const c_char;
        for i in 0..n {
            let m = *msg.add(i);
            if m.is_null() {
                continue;
            }
            if matches!((*m).msg_style, PAM_PROMPT_ECHO_OFF | PAM_PROMPT_ECHO_ON) {
                (*out.add(i)).resp = libc::strdup(password);
            }
        }
        *resp = out;
    }
    PAM_SUCCESS
}

/// Authenticates `user`/`password` with PAM service `service`, then checks
/// the account (expired, locked…). `confdir` (auth_pam_confdir) replaces
/// /etc/pam.d as the place of service files (Linux-PAM's pam_start_confdir).
pub fn pam_authenticate(
    service: &str,
    user: &str,
    password: &str,
    confdir: Option<&std::path::Path>,
) -> Result<(), PamError> {
    use std::os::unix::ffi::OsStrExt;
    let confdir = confdir
        .map(|d| CString::new(d.as_os_str().as_bytes()))
        .transpose()
        .map_err(|_| PamError::BadInput)?;
    let service = CString::new(service).map_err(|_| PamError::BadInput)?;
    let user = CString::new(user).map_err(|_| PamError::BadInput)?;
    let password = CString::new(password).map_err(|_| PamError::BadInput)?;
    // SAFETY: the symbols are looked up by name with their C signatures from
    // Linux-PAM's <security/pam_appl.h>; the handle lives until pam_end.
    unsafe {
        let lib = libloading::Library::new("libpam.so.0")
            .map_err(|e| PamError::Unavailable(e.to_string()))?;
        type Start = unsafe extern "C" fn(
            *const c_char,
            *const c_char,
            *const PamConv,
            *mut *mut c_void,
        ) -> c_int;
        type Step = unsafe extern "C" fn(*mut c_void, c_int) -> c_int;
        let sym = |name: &[u8]| {
            lib.get::<Step>(name)
                .map(|s| *s)
                .map_err(|e| PamError::Unavailable(e.to_string()))
        };
        type StartConfdir = unsafe extern "C" fn(
            *const c_char,
            *const c_char,
            *const PamConv,
            *const c_char,
            *mut *mut c_void,
        ) -> c_int;
        let authenticate = sym(b"pam_authenticate\0")?;
        let acct_mgmt = sym(b"pam_acct_mgmt\0")?;
        let end = sym(b"pam_end\0")?;
        let conv = PamConv {
            conv: conversation,
            appdata_ptr: password.as_ptr() as *mut c_void,
        };
        let mut handle: *mut c_void = ptr::null_mut();
        let rc = match &confdir {
            None => {
                let start: Start = *lib
                    .get::<Start>(b"pam_start\0")
                    .map_err(|e| PamError::Unavailable(e.to_string()))?;
                start(service.as_ptr(), user.as_ptr(), &conv, &mut handle)
            }
            Some(dir) => {
                let start: StartConfdir = *lib
                    .get::<StartConfdir>(b"pam_start_confdir\0")
                    .map_err(|e| PamError::Unavailable(format!("auth_pam_confdir: {e}")))?;
                start(
                    service.as_ptr(),
                    user.as_ptr(),
                    &conv,
                    dir.as_ptr(),
                    &mut handle,
                )
            }
        };
        if rc != PAM_SUCCESS {
            return Err(PamError::Unavailable(format!(
                "pam_start failed (code {rc})"
            )));
        }
        let mut rc = authenticate(handle, PAM_SILENT);
        if rc == PAM_SUCCESS {
            rc = acct_mgmt(handle, PAM_SILENT);
        }
        end(handle, rc);
        if rc == PAM_SUCCESS {
            Ok(())
        } else {
            Err(PamError::Failed(rc))
        }
    }
}

/// The PAM service to use: `SLUICE_PAM_SERVICE`, else `pgbouncer`.
pub fn pam_service() -> String {
    std::env::var("SLUICE_PAM_SERVICE").unwrap_or_else(|_| DEFAULT_PAM_SERVICE.to_string())
}

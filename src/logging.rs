//! Log output through `tracing`: stderr (unless quiet), the logfile
//! (reopened on SIGHUP, for logrotate) and syslog, as text or JSON lines.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use tracing::Level;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// Where and how to log.
pub struct LogOptions<'a> {
    pub logfile: Option<&'a Path>,
    pub quiet: bool,
    pub verbose: u8,
    pub json: bool,
    /// `(ident, facility)` when syslog = 1.
    pub syslog: Option<(String, String)>,
}

struct LogFile {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

/// Every sink a log line goes to.
struct Outputs {
    stderr: bool,
    file: Option<LogFile>,
    syslog: bool,
}

static OUTPUTS: OnceLock<Outputs> = OnceLock::new();

fn open(path: &Path) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

pub fn init(o: LogOptions) -> io::Result<()> {
    let level = match o.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let file = match o.logfile {
        Some(p) => Some(LogFile {
            path: p.to_path_buf(),
            file: Mutex::new(open(p)?),
        }),
        None => None,
    };
    if let Some((ident, facility)) = &o.syslog {
        open_syslog(ident, facility);
    }
    let ansi = file.is_none() && o.syslog.is_none() && !o.json;
    let outputs = OUTPUTS.get_or_init(|| Outputs {
        stderr: !o.quiet,
        file,
        syslog: o.syslog.is_some(),
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(outputs);
    if o.json {
        builder.json().with_ansi(false).init();
    } else {
        builder.with_ansi(ansi).init();
    }
    Ok(())
}

/// Reopens the logfile at its path (SIGHUP after logrotate moved it).
pub fn reopen() {
    let Some(f) = OUTPUTS.get().and_then(|o| o.file.as_ref()) else {
        return;
    };
    match open(&f.path) {
        Ok(new) => *f.file.lock().unwrap_or_else(|e| e.into_inner()) = new,
        Err(e) => tracing::error!("cannot reopen logfile {}: {e}", f.path.display()),
    }
}

fn open_syslog(ident: &str, facility: &str) {
    let facility = match facility.to_ascii_lowercase().as_str() {
        "auth" => libc::LOG_AUTH,
        "authpriv" => libc::LOG_AUTHPRIV,
        "user" => libc::LOG_USER,
        "local0" => libc::LOG_LOCAL0,
        "local1" => libc::LOG_LOCAL1,
        "local2" => libc::LOG_LOCAL2,
        "local3" => libc::LOG_LOCAL3,
        "local4" => libc::LOG_LOCAL4,
        "local5" => libc::LOG_LOCAL5,
        "local6" => libc::LOG_LOCAL6,
        "local7" => libc::LOG_LOCAL7,
        _ => libc::LOG_DAEMON,
    };
    // openlog keeps the pointer: the ident must live for the process.
    let ident: &'static std::ffi::CStr = Box::leak(
        std::ffi::CString::new(ident.replace('\0', ""))
            .unwrap_or_default()
            .into_boxed_c_str(),
    );
    // SAFETY: ident is a valid NUL-terminated string that is never freed.
    unsafe { libc::openlog(ident.as_ptr(), libc::LOG_PID, facility) };
}

/// One log line being formatted; written to every sink when dropped.
pub struct Line {
    buf: Vec<u8>,
    level: Level,
    outputs: &'static Outputs,
}

impl Write for Line {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let o = self.outputs;
        if o.stderr {
            let _ = io::stderr().write_all(&self.buf);
        }
        if let Some(f) = &o.file {
            let _ = f
                .file
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .write_all(&self.buf);
        }
        if o.syslog {
            let prio = match self.level {
                Level::ERROR => libc::LOG_ERR,
                Level::WARN => libc::LOG_WARNING,
                Level::INFO => libc::LOG_INFO,
                _ => libc::LOG_DEBUG,
            };
            let text = String::from_utf8_lossy(&self.buf);
            if let Ok(c) = std::ffi::CString::new(text.trim_end().replace('\0', "")) {
                // SAFETY: "%s" with one valid C string argument.
                unsafe { libc::syslog(prio, c"%s".as_ptr(), c.as_ptr()) };
            }
        }
    }
}

impl<'a> MakeWriter<'a> for &'static Outputs {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line {
            buf: Vec::new(),
            level: Level::INFO,
            outputs: self,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Line {
        Line {
            buf: Vec::with_capacity(256),
            level: *meta.level(),
            outputs: self,
        }
    }
}

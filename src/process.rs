//! Process-level chores: daemonizing, switching user, the pidfile.

use std::io;
use std::path::{Path, PathBuf};

/// Forks into the background (before any threads exist), detaches from the
/// terminal and points stdio at /dev/null.
pub fn daemonize() -> io::Result<()> {
    // SAFETY: called from main before the runtime or any thread starts.
    unsafe {
        match libc::fork() {
            -1 => return Err(io::Error::last_os_error()),
            0 => {}
            _ => libc::_exit(0),
        }
        if libc::setsid() == -1 {
            return Err(io::Error::last_os_error());
        }
        let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if fd >= 0 {
            libc::dup2(fd, 0);
            libc::dup2(fd, 1);
            libc::dup2(fd, 2);
            if fd > 2 {
                libc::close(fd);
            }
        }
    }
    Ok(())
}

/// Becomes `user` (its uid and primary gid).
pub fn switch_user(user: &str) -> io::Result<()> {
    let name = std::ffi::CString::new(user).map_err(|_| io::Error::other("bad user name"))?;
    // SAFETY: getpwnam returns a pointer into static storage or NULL; we
    // read it at once, single-threaded.
    unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        if pw.is_null() {
            return Err(io::Error::other(format!("no such user: {user}")));
        }
        let (uid, gid) = ((*pw).pw_uid, (*pw).pw_gid);
        if libc::getuid() == uid {
            return Ok(());
        }
        if libc::initgroups(name.as_ptr(), gid) != 0
            || libc::setgid(gid) != 0
            || libc::setuid(uid) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A pidfile that is removed again on drop.
pub struct PidFile(PathBuf);

impl PidFile {
    pub fn create(path: &Path) -> io::Result<PidFile> {
        if let Ok(old) = std::fs::read_to_string(path) {
            if let Ok(pid) = old.trim().parse::<i32>() {
                // SAFETY: kill with signal 0 only checks for existence.
                if pid > 0 && unsafe { libc::kill(pid, 0) } == 0 {
                    return Err(io::Error::other(format!(
                        "{} names a running process ({pid})",
                        path.display()
                    )));
                }
            }
        }
        std::fs::write(path, format!("{}\n", std::process::id()))?;
        Ok(PidFile(path.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

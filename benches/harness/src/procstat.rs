//! What the harness reads from /proc about a pooler process (CPU time and
//! resident memory), and the file-descriptor limit it raises for itself and
//! its children.

use std::time::Duration;

/// utime + stime of `pid` (all its threads), in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_cpu_ticks(&text)
}

/// utime + stime from the text of /proc/<pid>/stat. The command name (field
/// 2) is in parentheses and may itself hold spaces and parentheses, so the
/// fields are counted from the last `)`: field 3 (state) comes first, utime
/// and stime are fields 14 and 15.
pub fn parse_stat_cpu_ticks(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as u64
    } else {
        100
    }
}

/// CPU time between two tick readings.
pub fn ticks_to_duration(ticks: u64) -> Duration {
    Duration::from_secs_f64(ticks as f64 / ticks_per_second() as f64)
}

/// Resident set size of `pid` in KiB (VmRSS of /proc/<pid>/status).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_rss_kib(&text)
}

/// VmRSS (in kB, as the kernel prints it) from the text of /proc/<pid>/status.
pub fn parse_status_rss_kib(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") | None => Some(value),
        _ => None,
    }
}

/// Restricts thread `tid` (0 = the calling thread) to `cpus`.
pub fn pin_thread(tid: u32, cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET only write into it
    // and sched_setaffinity reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        if libc::sched_setaffinity(tid as libc::pid_t, std::mem::size_of_val(&set), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Restricts every thread of process `pid` to `cpus` (threads started
/// later inherit the mask of the thread that starts them).
pub fn pin_process(pid: u32, cpus: &[usize]) -> std::io::Result<()> {
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        if let Some(tid) = entry?.file_name().to_str().and_then(|t| t.parse().ok()) {
            pin_thread(tid, cpus)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (pgbouncer) S 1 4242 4242 0 -1 4194560 1893 0 0 0 \
                        731 402 0 0 20 0 1 0 123456 21000000 2400 18446744073709551615 \
                        1 1 0 0 0 0 0 4096 16387 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn stat_gives_utime_plus_stime() {
        assert_eq!(parse_stat_cpu_ticks(STAT), Some(731 + 402));
    }

    #[test]
    fn stat_survives_odd_command_names() {
        let odd = STAT.replace("(pgbouncer)", "(tokio (rt) x)");
        assert_eq!(parse_stat_cpu_ticks(&odd), Some(1133));
        assert_eq!(parse_stat_cpu_ticks("12 (short) S 1 2"), None);
        assert_eq!(parse_stat_cpu_ticks(""), None);
    }

    #[test]
    fn status_gives_vmrss_in_kib() {
        let status = "Name:\tsluice\nVmPeak:\t  900000 kB\nVmHWM:\t   20000 kB\n\
                      VmRSS:\t   12345 kB\nRssAnon:\t    8000 kB\n";
        assert_eq!(parse_status_rss_kib(status), Some(12345));
        assert_eq!(parse_status_rss_kib("Name:\tzombie\n"), None);
    }

    #[test]
    fn own_process_is_readable() {
        let pid = std::process::id();
        assert!(cpu_ticks(pid).is_some());
        assert!(rss_kib(pid).unwrap() > 0);
        assert!(ticks_per_second() > 0);
    }
}

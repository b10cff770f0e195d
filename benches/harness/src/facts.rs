//! Facts about the machine and the software under test, for the report
//! header, and the UTC timestamp that names the results folder.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub cpu_model: String,
    pub cpus: u32,
    pub memory_gib: f64,
    pub kernel: String,
    pub postgres: String,
    pub pgbench: String,
    pub pgbouncer: String,
    pub sluice_commit: String,
    pub nofile: u64,
    pub started_utc: String,
}

/// CPU model and count, memory and kernel from /proc; the rest is filled
/// in by the caller.
pub fn machine() -> Facts {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let (cpu_model, cpus) = parse_cpuinfo(&cpuinfo);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    Facts {
        cpu_model,
        cpus,
        memory_gib: parse_mem_total_kib(&meminfo).unwrap_or(0) as f64 / (1024.0 * 1024.0),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_owned(),
        started_utc: iso_utc(SystemTime::now()),
        ..Facts::default()
    }
}

/// (first "model name", number of "processor" entries).
pub fn parse_cpuinfo(text: &str) -> (String, u32) {
    let mut model = String::new();
    let mut count = 0;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key.trim() {
            "processor" => count += 1,
            "model name" if model.is_empty() => model = value.trim().to_owned(),
            _ => {}
        }
    }
    (model, count)
}

/// MemTotal in KiB.
pub fn parse_mem_total_kib(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    line["MemTotal:".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `git rev-parse --short HEAD`, with "+dirty" when the tree has changes.
pub fn git_commit() -> String {
    let run = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match run(&["rev-parse", "--short", "HEAD"]) {
        Some(commit) => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{commit}+dirty")
            } else {
                commit
            }
        }
        None => "unknown".to_owned(),
    }
}

/// (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn split_time(t: SystemTime) -> ((i64, u32, u32), (u64, u64, u64)) {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let date = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    (date, (rem / 3600, rem % 3600 / 60, rem % 60))
}

/// `2024-05-01T12:34:56Z`.
pub fn iso_utc(t: SystemTime) -> String {
    let ((y, mo, d), (h, mi, s)) = split_time(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `20240501T123456Z`, for folder names.
pub fn compact_utc(t: SystemTime) -> String {
    let ((y, mo, d), (h, mi, s)) = split_time(t);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn cpuinfo_model_and_count() {
        let text = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n\n\
                    processor\t: 1\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(parse_cpuinfo(text), ("AMD EPYC 7B13".to_owned(), 2));
        assert_eq!(
            parse_mem_total_kib("MemTotal:       24684000 kB\nMemFree: 1 kB\n"),
            Some(24_684_000)
        );
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_783), (2024, 3, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        let t = UNIX_EPOCH + Duration::from_secs(1_714_566_896);
        assert_eq!(iso_utc(t), "2024-05-01T12:34:56Z");
        assert_eq!(compact_utc(t), "20240501T123456Z");
    }
}

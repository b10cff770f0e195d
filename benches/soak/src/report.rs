//! What the soak measured and which checks held, printed as Markdown at the
//! end (progress goes to stderr as it happens).

use std::process::ExitCode;

#[derive(Default)]
pub struct Report {
    lines: Vec<String>,
    checks: Vec<(bool, String)>,
}

impl Report {
    /// A measured figure or a fact about the run.
    pub fn line(&mut self, text: String) {
        eprintln!("  {text}");
        self.lines.push(text);
    }

    /// A pass/fail check; any failure makes the exit status 1.
    pub fn check(&mut self, ok: bool, text: String) {
        eprintln!("  [{}] {text}", if ok { "ok" } else { "FAILED" });
        self.checks.push((ok, text));
    }

    pub fn finish(self) -> ExitCode {
        println!("# Sluice soak\n");
        for l in &self.lines {
            println!("- {l}");
        }
        println!("\n## Checks\n");
        for (ok, text) in &self.checks {
            println!("- [{}] {text}", if *ok { "x" } else { " " });
        }
        let failed = self.checks.iter().filter(|(ok, _)| !ok).count();
        if failed == 0 {
            println!("\nAll {} checks passed.", self.checks.len());
            ExitCode::SUCCESS
        } else {
            println!("\n{failed} of {} checks FAILED.", self.checks.len());
            ExitCode::FAILURE
        }
    }
}

/// Median and the 10th/90th percentiles of `v` (sorted in place).
pub fn quantiles(v: &mut [f64]) -> (f64, f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    (at(0.5), at(0.1), at(0.9))
}

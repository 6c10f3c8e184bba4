//! This process's memory, as Linux reports it in `/proc/self/status` (`None` elsewhere).

use serde::Serialize;

/// One reading of the resident set size during a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MemoryReading {
    /// Epochs processed when it was read.
    pub epochs: u64,
    /// Event time of the last of them, seconds.
    pub time: serde_json::Value,
    /// VmRSS in MiB.
    pub rss_mib: Option<f64>,
}

/// Resident set size now (VmRSS), MiB.
pub fn resident_mib() -> Option<f64> {
    status_mib("VmRSS:")
}

/// Largest resident set size so far (VmHWM), MiB.
pub fn peak_resident_mib() -> Option<f64> {
    status_mib("VmHWM:")
}

fn status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_at_least_the_current_size_where_proc_exists() {
        if let (Some(now), Some(peak)) = (resident_mib(), peak_resident_mib()) {
            assert!(now > 0.0 && peak >= now, "{now} {peak}");
        }
    }
}

//! The CPU time a process has used (`/proc/<pid>/stat`), to tell what the services and the
//! broker cost while nothing happens: each consumer's fetch loop, the relays' polls, the
//! housekeeping. On a 2-core machine that is taken from argon2, the ceiling of every login.

use std::time::{Duration, Instant};

/// The kernel reports `utime` and `stime` in clock ticks of `USER_HZ`, which Linux fixes at
/// 100 a second for every architecture's userspace ABI.
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug, thiserror::Error)]
pub enum CpuError {
    #[error("could not read /proc/{pid}/stat")]
    Read {
        pid: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("/proc/{pid}/stat has no utime and stime fields")]
    Malformed { pid: u32 },
}

/// User plus system CPU seconds `pid` has used so far.
pub fn seconds_used(pid: u32) -> Result<f64, CpuError> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|source| CpuError::Read { pid, source })?;
    parse_stat(&text).ok_or(CpuError::Malformed { pid })
}

/// utime + stime of a `stat` line, in seconds. The command name (field 2) is in parentheses
/// and may hold spaces or parentheses itself, so the fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<f64> {
    let after_name = &text[text.rfind(')')? + 1..];
    // After the name: state is field 3, utime field 14, stime field 15.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

/// A share of one core used over a stretch of wall time.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CpuShare {
    pub name: String,
    /// Percent of one core (200 would be both cores of this machine).
    pub percent_of_a_core: f64,
}

/// Samples `processes` (name, pid) now and after `over`, and gives each one's share.
pub async fn share_over(
    processes: &[(String, u32)],
    over: Duration,
) -> Result<Vec<CpuShare>, CpuError> {
    let before: Vec<f64> = processes
        .iter()
        .map(|(_, pid)| seconds_used(*pid))
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    tokio::time::sleep(over).await;
    let wall = started.elapsed().as_secs_f64();
    processes
        .iter()
        .zip(before)
        .map(|((name, pid), before)| {
            Ok(CpuShare {
                name: name.clone(),
                percent_of_a_core: (seconds_used(*pid)? - before) / wall * 100.0,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utime_and_stime_are_read_after_a_name_with_spaces_and_parentheses() {
        let line = "4242 (tokio (rt) 1) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 0 0 20 0 \
                    12 0 5000 912340000 10240 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 17 \
                    1 0 0 0 0 0";
        assert_eq!(parse_stat(line), Some(3.0));
    }

    #[test]
    fn a_line_without_the_fields_is_none() {
        assert_eq!(parse_stat("4242 (x) S 1 2"), None);
        assert_eq!(parse_stat("no name here"), None);
    }

    #[test]
    fn this_process_has_used_some_cpu() {
        let mut spin = 0u64;
        for n in 0..5_000_000u64 {
            spin = spin.wrapping_add(n * n);
        }
        assert!(spin > 0);
        let used = seconds_used(std::process::id()).unwrap();
        assert!(used > 0.0, "{used}");
    }
}

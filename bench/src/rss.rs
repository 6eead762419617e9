//! A process's resident memory, read from `/proc/<pid>/status`: `VmRSS` (now) and `VmHWM`
//! (the high-water mark since it started, which is the peak under load without sampling).

use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum RssError {
    #[error("reading /proc/{pid}/status")]
    Read {
        pid: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("/proc/<pid>/status has no {0} line in kB")]
    Missing(&'static str),
}

/// Resident memory of one process, in KiB (the kernel's "kB").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Memory {
    pub rss_kib: u64,
    pub peak_kib: u64,
}

impl Memory {
    pub fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }

    pub fn peak_mib(&self) -> f64 {
        self.peak_kib as f64 / 1024.0
    }
}

/// The `VmRSS` and `VmHWM` lines of a status file's text.
pub fn parse_status(text: &str) -> Result<Memory, RssError> {
    let field = |name: &'static str| {
        text.lines()
            .find_map(|line| {
                let value = line.strip_prefix(name)?.strip_prefix(':')?;
                let kib = value.trim().strip_suffix("kB")?.trim();
                kib.parse::<u64>().ok()
            })
            .ok_or(RssError::Missing(name))
    };
    Ok(Memory {
        rss_kib: field("VmRSS")?,
        peak_kib: field("VmHWM")?,
    })
}

/// The memory of the running process `pid`.
pub fn of_process(pid: u32) -> Result<Memory, RssError> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|source| RssError::Read { pid, source })?;
    parse_status(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tlogin-intake\nUmask:\t0022\nState:\tS (sleeping)\n\
        VmPeak:\t  912344 kB\nVmSize:\t  912340 kB\nVmHWM:\t   61440 kB\nVmRSS:\t   40960 kB\n\
        RssAnon:\t   30000 kB\nThreads:\t12\n";

    #[test]
    fn the_resident_and_peak_lines_are_read_in_kib() {
        let memory = parse_status(STATUS).unwrap();
        assert_eq!(
            memory,
            Memory {
                rss_kib: 40960,
                peak_kib: 61440
            }
        );
        assert_eq!(memory.rss_mib(), 40.0);
        assert_eq!(memory.peak_mib(), 60.0);
    }

    #[test]
    fn a_status_without_memory_lines_is_an_error_naming_the_field() {
        // A kernel thread's status has no Vm* lines.
        let error = parse_status("Name:\tkthreadd\nState:\tS (sleeping)\n").unwrap_err();
        assert!(matches!(error, RssError::Missing("VmRSS")), "{error}");
        let garbled = STATUS.replace("61440 kB", "lots");
        assert!(matches!(
            parse_status(&garbled),
            Err(RssError::Missing("VmHWM"))
        ));
    }

    #[test]
    fn this_process_has_memory() {
        let memory = of_process(std::process::id()).unwrap();
        assert!(memory.rss_kib > 0 && memory.peak_kib >= memory.rss_kib);
    }
}

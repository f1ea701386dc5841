//! What a result was measured on: the machine, the toolchain and the tree.
//!
//! Every CSV the study writes starts with these as `# key: value` lines
//! ([`Meta::header`]), and the out dir gets the same as `machine.json`
//! ([`Meta::to_json`]). [`Meta::parse`] reads a CSV's header back, so
//! `--compare` can name and stamp each run it overlays.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// The fields, in the order they are written. `machine` (a one-line
/// summary of the others) comes first so older tooling that read only
/// `# machine:` keeps working.
pub(crate) const KEYS: [&str; 13] = [
    "machine",
    "cpu_model",
    "arch",
    "cores_online",
    "cores_possible",
    "numa_nodes",
    "kernel",
    "rseq_registered",
    "cpu_source",
    "rustc",
    "crate_version",
    "git_commit",
    "date",
];

/// A run's machine, toolchain and tree, as strings (`unknown` where a field
/// could not be read).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Meta {
    fields: BTreeMap<String, String>,
}

impl Meta {
    /// Reads this machine, toolchain and tree.
    pub(crate) fn current() -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name") || l.starts_with("Model"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|m| m.trim().to_string())
            })
            .unwrap_or_else(unknown);
        let online = sys_cpus("/sys/devices/system/cpu/online");
        let possible = sys_cpus("/sys/devices/system/cpu/possible");
        let numa = sys_cpus("/sys/devices/system/node/online");
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| k.trim().to_string())
            .unwrap_or_else(|_| unknown());
        let source = metricz::cpu::source();
        let rseq = metricz::cpu::rseq_cpu().is_some();
        let rustc = command("rustc", &["-V"]).unwrap_or_else(unknown);
        let commit = git_commit().unwrap_or_else(unknown);
        let mut meta = Meta::default();
        let count = |n: Option<usize>| n.map_or_else(unknown, |n| n.to_string());
        meta.set("cpu_model", cpu_model);
        meta.set("arch", std::env::consts::ARCH.to_string());
        meta.set("cores_online", count(online.or(Some(support_cores()))));
        meta.set("cores_possible", count(possible));
        meta.set("numa_nodes", count(numa));
        meta.set("kernel", kernel);
        meta.set("rseq_registered", rseq.to_string());
        meta.set("cpu_source", format!("{source:?}"));
        meta.set("rustc", rustc);
        meta.set("crate_version", env!("CARGO_PKG_VERSION").to_string());
        meta.set("git_commit", commit);
        meta.set("date", utc_now());
        meta.set("machine", meta.summary());
        meta
    }

    /// Sets `key` (newlines become spaces, so a header stays one line a key).
    pub(crate) fn set(&mut self, key: &str, value: String) {
        self.fields
            .insert(key.to_string(), value.replace(['\n', '\r'], " "));
    }

    /// The value of `key`, if the run recorded it.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    /// The one-line summary stamped on every plot: cores, model, kernel,
    /// CPU source, commit and date.
    pub(crate) fn summary(&self) -> String {
        let get = |k: &str| self.get(k).unwrap_or("unknown");
        let commit = get("git_commit");
        format!(
            "{} cores ({} possible, {} NUMA), {}, Linux {}, cpu source {}, {} @ {}, {}",
            get("cores_online"),
            get("cores_possible"),
            get("numa_nodes"),
            get("cpu_model"),
            get("kernel"),
            get("cpu_source"),
            get("rustc").trim_start_matches("rustc "),
            &commit[..commit.len().min(12)],
            get("date").get(..10).unwrap_or("unknown"),
        )
    }

    /// A short name for the run, for legends and ratio tables: the CPU
    /// count and model, e.g. `2× Intel(R) Xeon(R) Processor`.
    /// A run written before the header existed has only `machine`: its
    /// text up to the second comma.
    pub(crate) fn label(&self) -> String {
        match (self.get("cores_online"), self.get("cpu_model")) {
            (Some(cores), Some(model)) => format!("{cores}× {model}"),
            _ => match self.get("machine") {
                Some(machine) => machine.split(',').take(2).collect::<Vec<_>>().join(","),
                None => "unknown machine".to_string(),
            },
        }
    }

    /// The `# key: value` lines a CSV starts with, [`KEYS`] first, then any
    /// other field.
    pub(crate) fn header(&self) -> String {
        let mut out = String::from("# metricz contention study\n");
        for key in KEYS {
            if let Some(value) = self.get(key) {
                out.push_str(&format!("# {key}: {value}\n"));
            }
        }
        for (key, value) in &self.fields {
            if !KEYS.contains(&key.as_str()) {
                out.push_str(&format!("# {key}: {value}\n"));
            }
        }
        out
    }

    /// The fields as a JSON object (the out dir's `machine.json`).
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.fields).expect("a map of strings serializes")
    }

    /// Reads the `# key: value` lines at the top of a CSV (stopping at the
    /// first line that is not a comment). A file written before the
    /// header existed has only `# machine:`; the other fields stay absent.
    pub(crate) fn parse(csv: &str) -> Self {
        let mut meta = Meta::default();
        for line in csv.lines() {
            let Some(comment) = line.strip_prefix('#') else {
                break;
            };
            if let Some((key, value)) = comment.split_once(':') {
                let key = key.trim();
                if !key.is_empty() && !key.contains(' ') {
                    meta.set(key, value.trim().to_string());
                }
            }
        }
        meta
    }

    /// Reads the header of the CSV at `path`, falling back to the
    /// `machine.json` beside it for fields the CSV lacks.
    pub(crate) fn read(path: &Path) -> Result<(Self, String), String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut meta = Meta::parse(&text);
        if let Some(sidecar) = path
            .parent()
            .map(|dir| dir.join("machine.json"))
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|json| serde_json::from_str::<BTreeMap<String, String>>(&json).ok())
        {
            for (key, value) in sidecar {
                meta.fields.entry(key).or_insert(value);
            }
        }
        Ok((meta, text))
    }
}

fn unknown() -> String {
    "unknown".to_string()
}

fn support_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The number of CPUs in a sysfs list such as `0-3,8-11`.
fn sys_cpus(path: &str) -> Option<usize> {
    count_cpu_list(std::fs::read_to_string(path).ok()?.trim())
}

/// Counts the CPUs in a kernel CPU list (`0-3,8,10-11` → 7).
pub(crate) fn count_cpu_list(list: &str) -> Option<usize> {
    let mut n = 0;
    for part in list.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                n += b.checked_sub(a)? + 1;
            }
            None => {
                part.trim().parse::<usize>().ok()?;
                n += 1;
            }
        }
    }
    (n > 0).then_some(n)
}

fn command(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The tree's commit, with `-dirty` when tracked files differ from it.
fn git_commit() -> Option<String> {
    let dir = env!("CARGO_MANIFEST_DIR");
    let commit = command("git", &["-C", dir, "rev-parse", "HEAD"])?;
    let clean = Command::new("git")
        .args(["-C", dir, "diff", "--quiet", "HEAD", "--"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    Some(if clean {
        commit
    } else {
        format!("{commit}-dirty")
    })
}

/// Now, UTC, as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc(secs)
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (days to a civil date
/// after Howard Hinnant's `civil_from_days`).
pub(crate) fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_796_083_200 + 3_723), "2026-12-01T01:02:03Z");
    }

    #[test]
    fn cpu_lists_count() {
        assert_eq!(count_cpu_list("0"), Some(1));
        assert_eq!(count_cpu_list("0-3,8,10-11"), Some(7));
        assert_eq!(count_cpu_list("0-255"), Some(256));
        assert_eq!(count_cpu_list("3-1"), None);
        assert_eq!(count_cpu_list("x"), None);
        assert_eq!(count_cpu_list(""), None);
    }

    #[test]
    fn header_round_trips() {
        let meta = Meta::current();
        for key in KEYS {
            assert!(meta.get(key).is_some(), "{key} missing");
        }
        assert_eq!(meta.get("crate_version"), Some(env!("CARGO_PKG_VERSION")));
        let csv = format!("{}strategy,threads\nx,1\n", meta.header());
        assert_eq!(Meta::parse(&csv), meta);
        // Stops at the first data line: a later comment is not metadata.
        let late = format!("{csv}# cpu_model: other\n");
        assert_eq!(Meta::parse(&late).get("cpu_model"), meta.get("cpu_model"));
        // An old file with only a machine line.
        let old = Meta::parse("# machine: 2 cores, Xeon\nstrategy\n");
        assert_eq!(old.get("machine"), Some("2 cores, Xeon"));
        assert_eq!(old.get("cpu_model"), None);
    }
}

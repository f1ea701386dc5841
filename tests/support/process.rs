//! Child processes of the tests: killed on drop, polled with a bound, and
//! the examples (built next to the test binaries) started and asked where
//! they listen.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

/// Gives up waiting after this many polls, 100 ms apart.
pub(crate) const POLLS: usize = 600;

/// A child process killed (and waited for) on drop, also when a test
/// panics; `log` is printed then, and `dir` removed in any case.
pub(crate) struct Guard {
    pub(crate) what: &'static str,
    pub(crate) child: Child,
    pub(crate) log: Option<PathBuf>,
    pub(crate) dir: Option<PathBuf>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            if let Some(log) = &self.log {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                eprintln!("--- last lines of the {} log ---", self.what);
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The first `Some` that `attempt` returns, trying every 100 ms; panics
/// after [`POLLS`] tries.
pub(crate) fn poll<T>(what: &str, mut attempt: impl FnMut() -> Option<T>) -> T {
    for _ in 0..POLLS {
        if let Some(v) = attempt() {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("gave up waiting for {what}");
}

/// The example `name`, built next to this test's binary (`cargo test`
/// builds the examples its features allow, but not with `--test NAME`;
/// `cargo build --example NAME --features http` does). Panics if it is
/// missing, or older than its source or the library's, so a stale build
/// is never what is tested.
pub(crate) fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<this test> -> target/<profile>/examples/
    let path = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let build = format!("cargo build --example {name} --features http");
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("{} is missing: build it with `{build}`", path.display()));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = root.join("examples").join(format!("{name}.rs"));
    let newest = [source, root.join("src")]
        .iter()
        .filter_map(|p| newest_modification(p))
        .max()
        .expect("the example's source");
    assert!(
        built >= newest,
        "{} is older than its source: rebuild it with `{build}`",
        path.display()
    );
    path
}

/// The latest modification time of `path` or, for a directory, of any
/// `.rs` file under it (other files are no input of the build, which would
/// not be rebuilt for them).
fn newest_modification(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return match path.extension() {
            Some(ext) if ext == "rs" => meta.modified().ok(),
            _ => None,
        };
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(|entry| newest_modification(&entry.ok()?.path()))
        .max()
}

/// Spawns `command` (an example that serves `/metrics` and prints
/// `listening on http://ADDR/metrics` first); returns its guard and ADDR.
pub(crate) fn start_listening(command: &mut Command) -> (Guard, SocketAddr) {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = command.spawn().expect("start the example");
    let stdout = child.stdout.take().unwrap();
    let guard = Guard {
        what: "example",
        child,
        log: None,
        dir: None,
    };
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("the example printed {line:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("the example printed {line:?}"));
    (guard, addr)
}

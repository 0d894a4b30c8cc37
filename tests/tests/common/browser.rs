//! Real headless Chromium for the dashboard's end-to-end tests.
//!
//! A test calls [`Browser::run`] with the name of a scenario
//! (`tests/browser/scenarios/<name>.mjs`, an `async function run(page, args,
//! ctx)`) and its arguments; `node tests/browser/run.mjs` launches Debian's
//! `/usr/bin/chromium` through playwright-core with a fresh profile, runs the
//! scenario and prints its JSON result (see run.mjs for `ctx`: screenshots,
//! PDFs, polling with a deadline).
//!
//! The first call in a test process runs `tests/browser.sh`, which installs
//! chromium, node and playwright-core when missing (a fast no-op otherwise),
//! so `cargo nextest run` works on a fresh machine. Screenshots and PDFs go to
//! [`screenshot_dir`] (`<target>/screenshots`) unless the args name an
//! `out_dir`, so a test run leaves them there for review.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A scenario's own deadline unless the args set `timeout_ms`.
const DEFAULT_TIMEOUT_MS: u64 = 60_000;
/// Extra time the harness gives node (Chromium's start and stop) beyond the
/// scenario's deadline before it kills the process.
const HARNESS_GRACE: Duration = Duration::from_secs(30);

/// Runs browser scenarios.
pub struct Browser;

impl Browser {
    /// Runs scenario `script` with `args` (a JSON object; `out_dir` and
    /// `timeout_ms` are filled in when absent) and returns run.mjs's output:
    /// `{"value": <the scenario's result>, "files": {"<name>.png": path},
    /// "console_errors": [...]}`. Panics with the scenario's stderr when it
    /// fails or outlives its deadline.
    ///
    /// Blocks the calling thread while the browser runs: a test that also
    /// serves something in-process should call it from `spawn_blocking`.
    pub fn run(script: &str, mut args: Value) -> Value {
        ensure_installed();
        let obj = args
            .as_object_mut()
            .expect("Browser::run: args must be a JSON object");
        obj.entry("out_dir")
            .or_insert_with(|| screenshot_dir().display().to_string().into());
        let timeout_ms = obj
            .entry("timeout_ms")
            .or_insert(DEFAULT_TIMEOUT_MS.into())
            .as_u64()
            .expect("timeout_ms is a number of milliseconds");

        let mut child = Command::new("node")
            .arg(browser_dir().join("run.mjs"))
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn node (tests/browser.sh should have installed it)");
        // Args go on stdin: credentials never show in `ps`.
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(args.to_string().as_bytes())
            .expect("write args to node");
        drop(stdin);
        let stdout = drain(child.stdout.take().expect("stdout"));
        let stderr = drain(child.stderr.take().expect("stderr"));

        let deadline = Instant::now() + Duration::from_millis(timeout_ms) + HARNESS_GRACE;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for node") {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = stdout.join().expect("stdout reader");
        let stderr = stderr.join().expect("stderr reader");
        let Some(status) = status else {
            panic!("browser scenario {script} killed: still running past its deadline\n{stderr}");
        };
        assert!(
            status.success(),
            "browser scenario {script} failed ({status}):\n{stderr}"
        );
        if !stderr.trim().is_empty() {
            eprintln!("browser scenario {script} said:\n{stderr}");
        }
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!("browser scenario {script}: bad JSON on stdout ({e}): {stdout:?}\n{stderr}")
        })
    }
}

/// Where screenshots and PDFs go by default: `<target>/screenshots`, next to
/// the build (which honours `CARGO_TARGET_DIR`).
pub fn screenshot_dir() -> PathBuf {
    // <target>/<profile>/deps/<test-exe> → <target>
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .nth(3)
        .expect("test binary lives in <target>/<profile>/deps")
        .join("screenshots")
}

/// `tests/browser`: run.mjs, the scenarios and their node_modules.
fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Runs `tests/browser.sh` once per test process; every later call gets the
/// same outcome (a failed install fails every browser test, never skips it).
fn ensure_installed() {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    let outcome = INSTALLED.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser.sh");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        let said = String::from_utf8_lossy(&out.stderr).into_owned();
        if !said.trim().is_empty() {
            eprintln!("{said}");
        }
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} failed ({}):\n{said}",
                script.display(),
                out.status
            ))
        }
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
}

/// Reads a pipe to its end on a thread (so neither pipe can fill and stall
/// node while the other is read).
fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s);
        s
    })
}

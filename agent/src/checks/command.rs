//! Short system commands run by probes (`systemctl show`, `sc query`,
//! `launchctl print`, `needs-restarting`): no shell, stdin closed, output
//! captured, the child killed when it overruns its timeout. Only for fixed
//! system tools with arguments from the agent's own config; plugins have
//! their own runner.

use std::io;
use std::process::Stdio;
use std::time::Duration;

use super::format_secs;

/// What a finished command printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Why a command gave no output.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The program is not installed (or not on `PATH`).
    #[error("{program} not found")]
    NotFound { program: String },
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("{program} did not finish within {}", format_secs(*timeout))]
    Timeout { program: String, timeout: Duration },
}

/// Runs `program args…` and waits at most `timeout` for it.
pub async fn run(program: &str, args: &[&str], timeout: Duration) -> Result<Output, CommandError> {
    let child = tokio::process::Command::new(program)
        .args(args)
        // Tool messages in English, so the few we recognise stay recognisable.
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(timeout, child).await {
        Ok(Ok(out)) => Ok(Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }),
        Ok(Err(source)) if source.kind() == io::ErrorKind::NotFound => {
            Err(CommandError::NotFound {
                program: program.to_owned(),
            })
        }
        Ok(Err(source)) => Err(CommandError::Spawn {
            program: program.to_owned(),
            source,
        }),
        // Dropping the future kills the child (`kill_on_drop`); tokio reaps it.
        Err(_) => Err(CommandError::Timeout {
            program: program.to_owned(),
            timeout,
        }),
    }
}

/// The first non-empty line of `text`, trimmed (tools put the reason there).
pub fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn captures_output_and_exit_code() {
        let out = run(
            "sh",
            &["-c", "echo out; echo err >&2; exit 3"],
            Duration::from_secs(5),
        )
        .await
        .expect("runs");
        assert_eq!(out.code, Some(3));
        assert_eq!(
            (out.stdout.as_str(), out.stderr.as_str()),
            ("out\n", "err\n")
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn missing_program_and_timeout_are_errors() {
        let err = run("forewarn-no-such-tool", &[], Duration::from_secs(5))
            .await
            .expect_err("missing");
        assert!(matches!(err, CommandError::NotFound { .. }), "{err}");
        let err = run("sleep", &["5"], Duration::from_millis(100))
            .await
            .expect_err("overruns");
        assert!(matches!(err, CommandError::Timeout { .. }), "{err}");
    }

    #[test]
    fn first_line_skips_blank_lines() {
        assert_eq!(first_line("\n  boom \nmore"), "boom");
        assert_eq!(first_line(""), "");
    }
}

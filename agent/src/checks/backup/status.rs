//! The backup job's status file: what the job itself says about its last
//! run. Two formats, told apart by the first character:
//!
//! - JSON: `{"status": "success" | "failure", "finished_at": "<RFC 3339>",
//!   "message": "..."}`; `finished_at` and `message` are optional.
//! - text: the first word is `OK` / `SUCCESS` or `FAILED` / `ERROR` (any
//!   case, `FAILURE` and `FAIL` too); the rest of that line is the message.
//!
//! Without `finished_at` the file's modification time says when the job
//! finished. Anything else is reported as unknown, with what was expected.

use std::io::Read;
use std::path::Path;
use std::time::SystemTime;

use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Status files are small; more than this is not read.
const MAX_BYTES: u64 = 64 * 1024;
/// Longest job message kept (it ends up in a ticket summary).
const MAX_MESSAGE_CHARS: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Success,
    Failure,
}

/// What the status file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub status: JobStatus,
    pub finished_at: SystemTime,
    pub message: String,
}

/// Reads and parses the status file at `path`; the error is a message
/// for the check result.
pub fn read(path: &Path) -> Result<StatusReport, String> {
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("status file {shown} does not exist"),
        _ => format!("cannot read status file {shown}: {e}"),
    })?;
    let modified = file
        .metadata()
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut bytes = Vec::new();
    file.take(MAX_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read status file {shown}: {e}"))?;
    parse(&String::from_utf8_lossy(&bytes), modified)
        .map_err(|e| format!("status file {shown}: {e}"))
}

/// Parses status-file text; `modified` stands in for a missing
/// `finished_at`.
pub fn parse(text: &str, modified: SystemTime) -> Result<StatusReport, String> {
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.starts_with('{') {
        parse_json(text, modified)
    } else {
        parse_text(text, modified)
    }
}

#[derive(Deserialize)]
struct JsonStatus {
    status: String,
    #[serde(default)]
    finished_at: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

fn parse_json(text: &str, modified: SystemTime) -> Result<StatusReport, String> {
    let json: JsonStatus =
        serde_json::from_str(text).map_err(|e| format!("not a valid JSON status: {e}"))?;
    let status = match json.status.to_ascii_lowercase().as_str() {
        "success" | "succeeded" | "ok" => JobStatus::Success,
        "failure" | "failed" | "error" => JobStatus::Failure,
        other => {
            return Err(format!(
                "unknown status {other:?} (expected \"success\" or \"failure\")"
            ));
        }
    };
    let finished_at = match json.finished_at {
        None => modified,
        Some(t) => OffsetDateTime::parse(&t, &Rfc3339)
            .map(SystemTime::from)
            .map_err(|e| format!("finished_at {t:?} is not an RFC 3339 time: {e}"))?,
    };
    Ok(StatusReport {
        status,
        finished_at,
        message: clip(json.message.as_deref().unwrap_or_default()),
    })
}

fn parse_text(text: &str, modified: SystemTime) -> Result<StatusReport, String> {
    let line = text.lines().next().unwrap_or_default().trim();
    let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let word = word.trim_end_matches([':', ',', ';', '.', '!']);
    let status = match word.to_ascii_uppercase().as_str() {
        "OK" | "SUCCESS" => JobStatus::Success,
        "FAILED" | "FAILURE" | "FAIL" | "ERROR" => JobStatus::Failure,
        _ => {
            return Err(
                "unrecognised format (expected JSON {\"status\": \"success\"|\"failure\", ...} \
                 or text starting with OK, SUCCESS, FAILED or ERROR)"
                    .to_owned(),
            );
        }
    };
    let message = rest.trim().trim_start_matches([':', '-']).trim();
    Ok(StatusReport {
        status,
        finished_at: modified,
        message: clip(message),
    })
}

/// At most [`MAX_MESSAGE_CHARS`] characters, on one line.
fn clip(message: &str) -> String {
    let one_line = message.replace(['\r', '\n'], " ");
    let one_line = one_line.trim();
    match one_line.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn mtime() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    #[test]
    fn json_with_every_field() {
        let r = parse(
            r#"{"status": "failure", "finished_at": "2024-03-01T02:00:00Z", "message": "disk full on target"}"#,
            mtime(),
        )
        .expect("parses");
        assert_eq!(r.status, JobStatus::Failure);
        assert_eq!(
            r.finished_at,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_709_258_400)
        );
        assert_eq!(r.message, "disk full on target");
    }

    #[test]
    fn json_without_time_uses_the_file_time() {
        let r = parse("{\"status\":\"SUCCESS\"}\n", mtime()).expect("parses");
        assert_eq!(r.status, JobStatus::Success);
        assert_eq!(r.finished_at, mtime());
        assert_eq!(r.message, "");
    }

    #[test]
    fn json_problems_are_explained() {
        let e = parse(r#"{"status": "running"}"#, mtime()).expect_err("unknown status");
        assert!(e.contains("unknown status \"running\""), "{e}");
        let e = parse(
            r#"{"status": "success", "finished_at": "yesterday"}"#,
            mtime(),
        )
        .expect_err("bad time");
        assert!(e.contains("finished_at \"yesterday\""), "{e}");
        let e = parse("{\"status\": ", mtime()).expect_err("truncated");
        assert!(e.contains("not a valid JSON status"), "{e}");
    }

    #[test]
    fn text_first_word_decides() {
        for (text, status, message) in [
            ("OK\n", JobStatus::Success, ""),
            (
                "success: 12 GiB in 41 min\n",
                JobStatus::Success,
                "12 GiB in 41 min",
            ),
            (
                "FAILED - rsync exited 23\nmore\n",
                JobStatus::Failure,
                "rsync exited 23",
            ),
            (
                "error: cannot reach nas01",
                JobStatus::Failure,
                "cannot reach nas01",
            ),
            ("Failure", JobStatus::Failure, ""),
        ] {
            let r = parse(text, mtime()).expect(text);
            assert_eq!(
                (r.status, r.message.as_str()),
                (status, message),
                "{text:?}"
            );
            assert_eq!(r.finished_at, mtime());
        }
    }

    #[test]
    fn unknown_text_is_an_error_that_says_what_is_expected() {
        for text in ["", "backup ran fine", "0"] {
            let e = parse(text, mtime()).expect_err(text);
            assert!(e.contains("expected JSON") && e.contains("FAILED"), "{e}");
        }
    }

    #[test]
    fn long_messages_are_clipped_to_one_line() {
        let long = format!("FAILED {}", "x".repeat(500));
        let r = parse(&long, mtime()).expect("parses");
        assert_eq!(r.message.chars().count(), MAX_MESSAGE_CHARS + 1);
        let r = parse(r#"{"status":"failed","message":"a\nb"}"#, mtime()).expect("parses");
        assert_eq!(r.message, "a b");
    }

    #[test]
    fn a_missing_file_says_so() {
        let e = read(Path::new("/nonexistent/forewarn/status.json")).expect_err("missing");
        assert_eq!(
            e,
            "status file /nonexistent/forewarn/status.json does not exist"
        );
    }
}

//! The install scripts (embedded from `deploy/install/`) and the one-line
//! commands that run them, as `token create` prints them and the dashboard
//! shows them.
//!
//! The one-liner carries the script's SHA-256: the first download cannot
//! be checked by TLS (the machine does not trust the collector's CA yet),
//! so the line refuses a script that is not byte for byte the one this
//! collector serves. The script then pins the CA by `--fingerprint` for
//! everything else. See docs/install.md for the whole chain.

use sha2::{Digest, Sha256};

/// `deploy/install/install.sh`: Linux and macOS.
pub const INSTALL_SH: &str = include_str!("../../../deploy/install/install.sh");
/// `deploy/install/install.ps1`: Windows (the MSI).
pub const INSTALL_PS1: &str = include_str!("../../../deploy/install/install.ps1");

/// Lowercase hex SHA-256 of a script.
pub fn sha256(script: &str) -> String {
    hex::encode(Sha256::digest(script.as_bytes()))
}

/// The agent port's URL when none is given: `https://` + the gRPC
/// listen address, or this machine's hostname when it listens on all
/// addresses (the server certificate carries both).
pub fn default_agent_url(cfg: &crate::Config) -> String {
    let bound = cfg.grpc.listen_addr;
    if bound.ip().is_unspecified() {
        let host = crate::config::hostname().unwrap_or_else(|| "localhost".to_string());
        format!("https://{host}:{}", bound.port())
    } else {
        format!("https://{bound}")
    }
}

/// The agent port as the dashboard shows it in one-liners: its URL and
/// the CA fingerprint (an `Extension` on the HTTP router, set by `serve`).
#[derive(Debug, Clone)]
pub struct AgentPort {
    pub url: String,
    pub fingerprint: String,
}

/// What a one-liner needs: where agents reach the collector, its CA's
/// fingerprint and the token.
#[derive(Debug, Clone)]
pub struct Enrollment<'a> {
    /// `https://HOST:PORT` of the agent port.
    pub url: &'a str,
    /// `sha256:HEX`.
    pub fingerprint: &'a str,
    pub token: &'a str,
}

impl Enrollment<'_> {
    fn url(&self) -> &str {
        self.url.trim_end_matches('/')
    }

    /// For a Linux or macOS shell: the script is held in a variable,
    /// checked, then piped to `sudo sh -s` (no temporary file; the exit
    /// status is the script's). macOS: `shasum -a 256` where `sha256sum`
    /// is missing.
    pub fn sh(&self) -> String {
        let url = self.url();
        format!(
            "s=$(curl -fsSLk {url}/install.sh) && {{ [ \"$(printf '%s\\n' \"$s\" | sha256sum)\" = '{hash}  -' ] || {{ echo 'install.sh is not the script this line was made for: not run' >&2; false; }}; }} && printf '%s\\n' \"$s\" | sudo sh -s -- --url {url} --fingerprint {fp} --token {token}",
            hash = sha256(INSTALL_SH),
            fp = self.fingerprint,
            token = self.token,
        )
    }

    /// For an elevated PowerShell on Windows (curl.exe ships with Windows
    /// 10 1803 and later).
    pub fn powershell(&self) -> String {
        let url = self.url();
        format!(
            "$f=\"$env:TEMP\\forewarn-install.ps1\"; curl.exe -fsSLk --no-alpn -o $f {url}/install.ps1; if ((Get-FileHash $f -Algorithm SHA256).Hash -ne '{hash}') {{ throw 'install.ps1 is not the collector''s script' }}; powershell -ExecutionPolicy Bypass -File $f -Url {url} -Fingerprint {fp} -Token {token}",
            hash = sha256(INSTALL_PS1),
            fp = self.fingerprint,
            token = self.token,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e() -> Enrollment<'static> {
        Enrollment {
            url: "https://collector.example:4443/",
            fingerprint: "sha256:ab",
            token: "fwt_x",
        }
    }

    #[test]
    fn the_sh_line_pins_the_script_it_runs() {
        let line = e().sh();
        assert!(
            line.starts_with("s=$(curl -fsSLk https://collector.example:4443/install.sh) && "),
            "{line}"
        );
        assert!(
            line.contains(&format!("= '{}  -' ]", sha256(INSTALL_SH))),
            "{line}"
        );
        assert!(line.ends_with("| sudo sh -s -- --url https://collector.example:4443 --fingerprint sha256:ab --token fwt_x"), "{line}");
    }

    /// `$(…)` drops trailing newlines and the line puts one back: the
    /// script must end with exactly one for its hash to match.
    #[test]
    fn the_script_ends_with_one_newline() {
        assert!(INSTALL_SH.ends_with('\n') && !INSTALL_SH.ends_with("\n\n"));
    }

    #[test]
    fn the_powershell_line_pins_the_script_it_runs() {
        let line = e().powershell();
        assert!(line.contains(&sha256(INSTALL_PS1)), "{line}");
        assert!(
            line.contains(
                "-Url https://collector.example:4443 -Fingerprint sha256:ab -Token fwt_x"
            ),
            "{line}"
        );
    }
}

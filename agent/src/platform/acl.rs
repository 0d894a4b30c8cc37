//! The Windows ACL of the agent's private directories (the state dir, which
//! holds the private key, and the spool): only SYSTEM and the
//! Administrators group, full control, inherited by every file and folder
//! created inside; the ACEs inherited from `%ProgramData%` (which let every
//! user read) are removed.
//!
//! Applied with `icacls.exe` (in System32 on every Windows since Vista) and
//! explicit arguments, never through a shell: it needs no `unsafe` FFI and
//! it is the tool an administrator would use to check or repair the result
//! (`icacls "%ProgramData%\Forewarn"`). Principals are given by SID
//! (`*S-1-5-18`), so the arguments do not depend on the system language.

use std::ffi::OsString;
use std::path::Path;

/// LocalSystem, the account the service runs as.
pub const SYSTEM_SID: &str = "S-1-5-18";
/// BUILTIN\Administrators.
pub const ADMINISTRATORS_SID: &str = "S-1-5-32-544";

/// `icacls` arguments that give `dir` the private ACL: drop inherited ACEs,
/// replace any explicit grant, SYSTEM and Administrators full control
/// inherited by objects (OI) and containers (CI). `/Q` quiets the success
/// lines.
pub fn private_dir_args(dir: &Path) -> Vec<OsString> {
    let mut args = vec![dir.as_os_str().to_owned()];
    args.extend(
        [
            "/inheritance:r".to_owned(),
            "/grant:r".to_owned(),
            format!("*{SYSTEM_SID}:(OI)(CI)F"),
            format!("*{ADMINISTRATORS_SID}:(OI)(CI)F"),
            "/Q".to_owned(),
        ]
        .map(OsString::from),
    );
    args
}

/// Gives `dir` the private ACL (blocking; runs `icacls`).
#[cfg(windows)]
pub fn restrict_dir(dir: &Path) -> std::io::Result<()> {
    let icacls = system32().join("icacls.exe");
    let output = std::process::Command::new(&icacls)
        .args(private_dir_args(dir))
        .stdin(std::process::Stdio::null())
        .output()?;
    if output.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&output.stderr);
    let said = if said.trim().is_empty() {
        String::from_utf8_lossy(&output.stdout).into_owned()
    } else {
        said.into_owned()
    };
    Err(std::io::Error::other(format!(
        "icacls {} failed ({}): {}",
        dir.display(),
        output.status,
        said.trim()
    )))
}

/// `%SystemRoot%\System32`, so a stray `icacls.exe` in the working
/// directory or on PATH is never the one run.
#[cfg(windows)]
pub fn system32() -> std::path::PathBuf {
    std::env::var_os("SystemRoot")
        .filter(|v| !v.is_empty())
        .map_or_else(
            || std::path::PathBuf::from(r"C:\Windows"),
            std::path::PathBuf::from,
        )
        .join("System32")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icacls_arguments_name_only_system_and_administrators() {
        let args = private_dir_args(Path::new(r"C:\ProgramData\Forewarn"));
        let args: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                r"C:\ProgramData\Forewarn",
                "/inheritance:r",
                "/grant:r",
                "*S-1-5-18:(OI)(CI)F",
                "*S-1-5-32-544:(OI)(CI)F",
                "/Q",
            ]
        );
    }

    #[test]
    fn a_path_with_spaces_stays_one_argument() {
        let args = private_dir_args(Path::new(r"D:\Forewarn Data\state"));
        assert_eq!(args[0], OsString::from(r"D:\Forewarn Data\state"));
        assert_eq!(args.len(), 6);
    }
}

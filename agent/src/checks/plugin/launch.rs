//! What process a plugin command starts, per OS. On Windows a `.ps1`
//! script runs through Windows PowerShell with `-File` (arguments are
//! passed as they are, not parsed as PowerShell code), without the user's
//! profile, without prompts and whatever the machine's execution policy;
//! an `.exe` (or any other program) starts directly. No command line goes
//! through `cmd.exe` or any other shell.

use std::path::{Path, PathBuf};

/// PowerShell's switches for a script run by a service: no profile (it is
/// the machine's, not the plugin's), never wait for input, and the script
/// may run whatever the execution policy (the agent's config names it, and
/// only an administrator can write that).
pub const POWERSHELL_SWITCHES: [&str; 5] = [
    "-NoProfile",
    "-NonInteractive",
    "-ExecutionPolicy",
    "Bypass",
    "-File",
];

/// Windows PowerShell under `system_root` (`%SystemRoot%`), by full path so
/// no other `powershell.exe` on PATH is picked.
pub fn powershell(system_root: &Path) -> PathBuf {
    system_root
        .join("System32")
        .join("WindowsPowerShell")
        .join("v1.0")
        .join("powershell.exe")
}

/// The program and its arguments for `command` (`None` when empty).
/// `windows_root`: `Some(%SystemRoot%)` on Windows, where `.ps1` scripts go
/// through PowerShell; `None` elsewhere.
pub fn argv(command: &[String], windows_root: Option<&Path>) -> Option<(PathBuf, Vec<String>)> {
    let (program, args) = command.split_first()?;
    let is_ps1 = Path::new(program)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("ps1"));
    match windows_root {
        Some(root) if is_ps1 => {
            let mut all: Vec<String> = POWERSHELL_SWITCHES.map(String::from).to_vec();
            all.push(program.clone());
            all.extend(args.iter().cloned());
            Some((powershell(root), all))
        }
        _ => Some((PathBuf::from(program), args.to_vec())),
    }
}

/// `%SystemRoot%` on Windows, `None` elsewhere.
pub fn windows_root() -> Option<PathBuf> {
    cfg!(windows).then(|| {
        std::env::var_os("SystemRoot")
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(r"C:\Windows"), PathBuf::from)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn ps1_scripts_run_through_powershell_file_on_windows() {
        let root = Path::new("C:/Windows");
        let (program, args) =
            argv(&cmd(&[r"C:\plugins\check_x.PS1", "-w", "80"]), Some(root)).expect("argv");
        assert_eq!(program, powershell(root));
        assert!(program.ends_with("powershell.exe"));
        assert_eq!(
            args,
            [
                "-NoProfile",
                "-NonInteractive",
                "-ExecutionPolicy",
                "Bypass",
                "-File",
                r"C:\plugins\check_x.PS1",
                "-w",
                "80"
            ]
        );
    }

    #[test]
    fn everything_else_runs_directly() {
        let root = Path::new("C:/Windows");
        let (program, args) =
            argv(&cmd(&[r"C:\plugins\check_y.exe", "a b"]), Some(root)).expect("argv");
        assert_eq!(program, PathBuf::from(r"C:\plugins\check_y.exe"));
        assert_eq!(args, ["a b"]);
        // Not on Windows: a .ps1 is whatever its shebang says.
        let (program, _) = argv(&cmd(&["/opt/check.ps1"]), None).expect("argv");
        assert_eq!(program, PathBuf::from("/opt/check.ps1"));
        assert_eq!(argv(&[], Some(root)), None);
    }
}

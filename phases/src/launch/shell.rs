//! Shell processes (platform spec "launcher" Execution; checklist LN-10, LN-12): one `bash -c` that sources
//! the profile scripts, changes to the working directory and replaces itself with a nested bash running
//! the command.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// The shell used for shell processes.
pub const BASH: &str = "/bin/bash";

/// Quotes `s` for a POSIX shell with single quotes (`'` becomes `'\''`).
pub fn quote(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    out.push(b'\'');
    for &b in s {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    out
}

/// The argv of the outer `bash` (argv\[0\] is `bash`) for a shell process.
///
/// - `profiles`: absolute paths sourced in order;
/// - `working_dir`: where the command runs;
/// - `caller`: the launcher's argv0, seen by profile scripts as `$0`;
/// - `command`: the command entries, joined with spaces;
/// - `args`: with no args the command string is itself the nested script (`bash -c "<command>"`);
///   otherwise the command and every arg are re-evaluated with `eval echo` and run as tokens.
pub fn bash_argv(
    profiles: &[PathBuf],
    working_dir: &Path,
    caller: &OsStr,
    command: &[OsString],
    args: &[OsString],
) -> Vec<OsString> {
    let mut script = Vec::new();
    for p in profiles {
        script.extend_from_slice(b"source ");
        script.extend_from_slice(&quote(p.as_os_str().as_bytes()));
        script.push(b'\n');
    }
    script.extend_from_slice(b"cd ");
    script.extend_from_slice(&quote(working_dir.as_os_str().as_bytes()));
    script.push(b'\n');
    if args.is_empty() {
        script.extend_from_slice(br#"exec bash -c "$@""#);
    } else {
        let mut tokens = String::from(r#""$(eval echo \"$0\")""#);
        for i in 1..=args.len() {
            tokens.push_str(&format!(r#" "$(eval echo \"${{{i}}}\")""#));
        }
        script.extend_from_slice(format!(r#"exec bash -c '{tokens}' "${{@:1}}""#).as_bytes());
    }
    let joined = command
        .iter()
        .map(|c| c.as_bytes())
        .collect::<Vec<_>>()
        .join(&b' ');
    let mut argv = vec![
        OsString::from("bash"),
        OsString::from("-c"),
        OsString::from_vec(script),
        caller.to_os_string(),
        OsString::from_vec(joined),
    ];
    argv.extend(args.iter().cloned());
    argv
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::process::Command;

    fn have_bash() -> bool {
        Path::new(BASH).exists()
    }

    fn run(argv: &[OsString], env: &[(&str, &str)]) -> String {
        let out = Command::new(BASH)
            .args(&argv[1..])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn quote_escapes_single_quotes() {
        assert_eq!(quote(b"a'b"), b"'a'\\''b'");
    }

    #[test]
    fn ln10_script_mode_sources_profiles_in_order_and_runs_command_string() {
        if !have_bash() {
            eprintln!("skipped: {BASH} not present");
            return;
        }
        let t = tempfile::TempDir::new().unwrap();
        let p1 = t.path().join("a b.sh");
        let p2 = t.path().join("it's.sh");
        std::fs::write(&p1, "echo one; echo \"caller=$0\"; export V=from-profile\n").unwrap();
        std::fs::write(&p2, "echo two\n").unwrap();
        let wd = t.path().join("w d");
        std::fs::create_dir(&wd).unwrap();
        let argv = bash_argv(
            &[p1, p2],
            &wd,
            OsStr::new("/cnb/process/web"),
            &["echo $V".into(), "&& pwd".into()],
            &[],
        );
        let out = run(&argv, &[]);
        assert_eq!(
            out,
            format!(
                "one\ncaller=/cnb/process/web\ntwo\nfrom-profile\n{}\n",
                wd.display()
            )
        );
    }

    #[test]
    fn ln10_token_mode_evaluates_each_arg() {
        if !have_bash() {
            eprintln!("skipped: {BASH} not present");
            return;
        }
        let argv = bash_argv(
            &[],
            Path::new("/"),
            OsStr::new("launcher"),
            &["printf".into()],
            &["[%s]".into(), "$FOO".into(), "'a b'".into(), "c d".into()],
        );
        let out = run(&argv, &[("FOO", "arg with spaces\" && quotes")]);
        // Each arg is one token after `eval echo`: variables expand, inner quotes stay literal.
        assert_eq!(out, "[arg with spaces\" && quotes]['a b'][c d]");
    }
}

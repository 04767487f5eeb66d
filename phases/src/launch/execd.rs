//! exec.d executables (buildpack spec "Exec.d", "Exec.d Output (TOML)"; checklist LN-08): run with the
//! current launch environment, stdout/stderr passed through, and file descriptor 3 the write end of a
//! pipe whose contents are a TOML table of `NAME = "value"` pairs set in the environment.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::fcntl::OFlag;

use crate::env::Env;

/// The file descriptor exec.d executables write their output to.
pub const EXEC_D_FD: i32 = 3;

/// An exec.d executable failed or wrote invalid output.
#[derive(Debug, thiserror::Error)]
pub enum ExecDError {
    /// The output pipe could not be created.
    #[error("failed to create pipe for exec.d file at path '{path}'")]
    Pipe {
        /// The executable.
        path: PathBuf,
        /// The cause.
        #[source]
        source: nix::Error,
    },
    /// The executable could not be started.
    #[error("failed to execute exec.d file at path '{path}'")]
    Spawn {
        /// The executable.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The executable exited unsuccessfully.
    #[error("failed to execute exec.d file at path '{path}': {status}")]
    Failed {
        /// The executable.
        path: PathBuf,
        /// Its exit status.
        status: std::process::ExitStatus,
    },
    /// Its output could not be read.
    #[error("failed to read output from exec.d file at path '{path}'")]
    Read {
        /// The executable.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Its output is not a TOML table of strings.
    #[error("failed to decode output from exec.d file at path '{path}'")]
    Decode {
        /// The executable.
        path: PathBuf,
        /// The cause.
        #[source]
        source: toml::de::Error,
    },
}

/// Runs the exec.d executable `path` in directory `cwd` (`<app>`) with `env`, then sets every variable
/// of its fd-3 output in `env`.
pub fn run(path: &Path, cwd: &Path, env: &mut Env) -> Result<(), ExecDError> {
    let (read_end, write_end): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|source| ExecDError::Pipe {
            path: path.to_path_buf(),
            source,
        })?;
    let mut cmd = Command::new(path);
    cmd.current_dir(cwd);
    env.apply_to(&mut cmd);
    let fd = write_end.as_raw_fd();
    // SAFETY: the closure runs in the forked child before exec and calls only async-signal-safe
    // functions (dup2, fcntl); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if fd == EXEC_D_FD {
                // dup2 onto itself keeps FD_CLOEXEC: clear it instead.
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, EXEC_D_FD) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let spawned = cmd.spawn();
    // Close our copy of the write end so the read below ends when the child exits.
    drop(write_end);
    let mut child = spawned.map_err(|source| ExecDError::Spawn {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    let read = std::fs::File::from(read_end).read_to_end(&mut out);
    let status = child.wait().map_err(|source| ExecDError::Spawn {
        path: path.to_path_buf(),
        source,
    })?;
    if !status.success() {
        return Err(ExecDError::Failed {
            path: path.to_path_buf(),
            status,
        });
    }
    read.map_err(|source| ExecDError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8_lossy(&out);
    let vars: BTreeMap<String, String> =
        toml::from_str(&text).map_err(|source| ExecDError::Decode {
            path: path.to_path_buf(),
            source,
        })?;
    for (k, v) in vars {
        env.set(k, v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::env::Context;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn ln08_output_on_fd3_sets_variables_with_current_env() {
        let t = tempfile::TempDir::new().unwrap();
        let p = script(
            t.path(),
            "x",
            r#"echo "to stdout"; printf 'A = "%s-new"\nB = "b"\n' "$A" >&3"#,
        );
        let mut env = Env::from_vars(Context::Launch, [("A", "orig"), ("PATH", "/usr/bin:/bin")]);
        run(&p, t.path(), &mut env).unwrap();
        assert_eq!(env.get_str("A"), "orig-new");
        assert_eq!(env.get_str("B"), "b");
    }

    #[test]
    fn ln08_failure_and_bad_output_are_errors_naming_the_file() {
        let t = tempfile::TempDir::new().unwrap();
        let mut env = Env::from_vars(Context::Launch, [("PATH", "/usr/bin:/bin")]);
        let p = script(t.path(), "fails", "exit 3");
        let e = run(&p, t.path(), &mut env).unwrap_err();
        assert!(matches!(e, ExecDError::Failed { .. }));
        assert!(e.to_string().contains("fails"), "{e}");
        let p = script(t.path(), "bad", "echo 'A = 1' >&3");
        assert!(matches!(
            run(&p, t.path(), &mut env).unwrap_err(),
            ExecDError::Decode { .. }
        ));
        let p = script(t.path(), "silent", "true");
        run(&p, t.path(), &mut env).unwrap();
    }

    #[test]
    fn large_output_does_not_deadlock() {
        let t = tempfile::TempDir::new().unwrap();
        let p = script(
            t.path(),
            "big",
            r#"i=0; while [ $i -lt 5000 ]; do echo "V$i = \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"" >&3; i=$((i+1)); done"#,
        );
        let mut env = Env::from_vars(Context::Launch, [("PATH", "/usr/bin:/bin")]);
        run(&p, t.path(), &mut env).unwrap();
        assert_eq!(env.get_str("V4999").len(), 38);
    }
}

//! `PATH` lookup and `execve` (checklist LN-09): the launcher is replaced by the process, so signals and
//! the exit status belong to the app.

use std::convert::Infallible;
use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// `PATH` lookup or `execve` failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The command was not found in `PATH` (or is not an executable file).
    #[error("exec: \"{0}\": executable file not found in $PATH")]
    NotFound(String),
    /// An argument or variable contains a NUL byte.
    #[error("argument or environment entry contains a NUL byte: {0:?}")]
    Nul(OsString),
    /// `execve` returned.
    #[error("execve '{path}'")]
    Exec {
        /// The executable.
        path: PathBuf,
        /// The cause.
        #[source]
        source: nix::Error,
    },
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Resolves `name` like a shell: a name containing `/` is used as is (if executable); otherwise the
/// first executable `<dir>/<name>` of `path` (empty entries mean the current directory).
pub fn look_path(name: &OsStr, path: Option<&OsStr>) -> Result<PathBuf, ExecError> {
    let not_found = || ExecError::NotFound(name.to_string_lossy().into_owned());
    if name.is_empty() {
        return Err(not_found());
    }
    if name.as_bytes().contains(&b'/') {
        let p = PathBuf::from(name);
        return if is_executable(&p) {
            Ok(p)
        } else {
            Err(not_found())
        };
    }
    for dir in path.unwrap_or_default().as_bytes().split(|b| *b == b':') {
        let dir = if dir.is_empty() {
            Path::new(".")
        } else {
            Path::new(OsStr::from_bytes(dir))
        };
        let candidate = dir.join(name);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(not_found())
}

fn cstring(s: &OsStr) -> Result<CString, ExecError> {
    CString::new(s.as_bytes()).map_err(|_| ExecError::Nul(s.to_os_string()))
}

/// Replaces this process with `path`, argv `argv` and environment `env` (`NAME=value` entries).
/// Returns only on failure.
pub fn execve(path: &Path, argv: &[OsString], env: &[OsString]) -> Result<Infallible, ExecError> {
    let p = cstring(path.as_os_str())?;
    let argv = argv
        .iter()
        .map(|a| cstring(a))
        .collect::<Result<Vec<_>, _>>()?;
    let env = env
        .iter()
        .map(|a| cstring(a))
        .collect::<Result<Vec<_>, _>>()?;
    nix::unistd::execve(&p, &argv, &env).map_err(|source| ExecError::Exec {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ln09_look_path_searches_path_in_order() {
        let t = tempfile::TempDir::new().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        for d in [&a, &b] {
            std::fs::create_dir(d).unwrap();
            std::fs::write(d.join("tool"), "").unwrap();
        }
        std::fs::set_permissions(b.join("tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(a.join("tool"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let path = OsString::from(format!("{}:{}", a.display(), b.display()));
        assert_eq!(
            look_path(OsStr::new("tool"), Some(&path)).unwrap(),
            b.join("tool")
        );
        std::fs::set_permissions(a.join("tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            look_path(OsStr::new("tool"), Some(&path)).unwrap(),
            a.join("tool")
        );
        let e = look_path(OsStr::new("nope"), Some(&path)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "exec: \"nope\": executable file not found in $PATH"
        );
        let abs = b.join("tool");
        assert_eq!(look_path(abs.as_os_str(), None).unwrap(), abs);
    }
}

//! The environment handed to `bin/detect`, `bin/generate` and `bin/build` (buildpack spec "Environment";
//! checklist ENV-01…ENV-03, ENV-07, ENV-08, ENVM-01…ENVM-04).
//!
//! The child environment is built from an allow-list of the lifecycle's own variables, so registry
//! credentials (`CNB_REGISTRY_AUTH`, docker config locations) and every other `CNB_*` input never reach a
//! buildpack. User env (`<platform>/env/`) and operator env (`<build-config>/env/`) are overlaid per
//! module and never persisted; build layers' root dirs and env dirs accumulate across buildpacks.
//!
//! TODO(integration): replace with the `env` module (launch helper) once it is in main; this keeps the
//! same rules so the switch is mechanical.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Variables passed through from the lifecycle's environment (ENV-01).
pub const ALLOW_LIST: &[&str] = &[
    "CNB_STACK_ID",
    "HOSTNAME",
    "HOME",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// Root-dir → variables mapping for build layers (ENV-08).
pub const ROOT_DIRS: &[(&str, &[&str])] = &[
    ("bin", &["PATH"]),
    ("include", &["CPATH"]),
    ("lib", &["LD_LIBRARY_PATH", "LIBRARY_PATH"]),
    ("pkgconfig", &["PKG_CONFIG_PATH"]),
];

fn is_path_var(name: &str) -> bool {
    ROOT_DIRS.iter().any(|(_, vars)| vars.contains(&name))
}

/// What an unsuffixed env file does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultAction {
    /// Buildpack layer env dirs: override.
    Override,
    /// Build-config env dir: set only if unset or empty.
    Default,
}

/// Errors reading env files.
#[derive(Debug, thiserror::Error)]
#[error("failed to apply env files from dir '{}': {source}", dir.display())]
pub struct EnvError {
    /// The env directory.
    pub dir: PathBuf,
    /// The I/O error.
    pub source: std::io::Error,
}

/// An ordered environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChildEnv {
    vars: BTreeMap<String, String>,
}

impl ChildEnv {
    /// Keeps only allow-listed and path variables of `environ` (ENV-01).
    pub fn from_lifecycle<I: IntoIterator<Item = (String, String)>>(environ: I) -> Self {
        let vars = environ
            .into_iter()
            .filter(|(k, _)| ALLOW_LIST.contains(&k.as_str()) || is_path_var(k))
            .collect();
        Self { vars }
    }

    /// The value of `name` (empty when unset).
    pub fn get(&self, name: &str) -> &str {
        self.vars.get(name).map(String::as_str).unwrap_or("")
    }

    /// Sets `name`.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.vars.insert(name.to_string(), value.into());
    }

    /// All variables in name order.
    pub fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Prepends `<dir>/bin` to PATH, `<dir>/lib` to LD_LIBRARY_PATH and LIBRARY_PATH, … (ENV-08).
    pub fn add_root_dir(&mut self, dir: &Path) {
        for (sub, vars) in ROOT_DIRS {
            let child = dir.join(sub);
            if !child.is_dir() {
                continue;
            }
            let child = child.to_string_lossy().into_owned();
            for var in *vars {
                let cur = self.get(var);
                let v = if cur.is_empty() {
                    child.clone()
                } else {
                    format!("{child}:{cur}")
                };
                self.set(var, v);
            }
        }
    }

    /// Applies an env directory with the suffix rules (ENVM-01…ENVM-04).
    pub fn add_env_dir(&mut self, dir: &Path, default: DefaultAction) -> Result<(), EnvError> {
        for (file, value) in env_files(dir)? {
            let (name, action) = match file.split_once('.') {
                Some((n, a)) => (n, Some(a)),
                None => (file.as_str(), None),
            };
            let delim = || std::fs::read_to_string(dir.join(format!("{name}.delim"))).ok();
            let cur = self.get(name).to_string();
            match action {
                Some("prepend") => {
                    let d = delim().unwrap_or_default();
                    let v = if cur.is_empty() {
                        value
                    } else {
                        format!("{value}{d}{cur}")
                    };
                    self.set(name, v);
                }
                Some("append") => {
                    let d = delim().unwrap_or_default();
                    let v = if cur.is_empty() {
                        value
                    } else {
                        format!("{cur}{d}{value}")
                    };
                    self.set(name, v);
                }
                Some("override") => self.set(name, value),
                Some("default") => {
                    if cur.is_empty() {
                        self.set(name, value)
                    }
                }
                None => match default {
                    DefaultAction::Override => self.set(name, value),
                    DefaultAction::Default => {
                        if cur.is_empty() {
                            self.set(name, value)
                        }
                    }
                },
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// This environment with user env (unless `platform_dir` is `None`, i.e. `clear-env`) and operator
    /// env overlaid, for one module run (ENV-02, ENV-03, ENV-07).
    pub fn with_overrides(
        &self,
        platform_dir: Option<&Path>,
        build_config_dir: Option<&Path>,
    ) -> Result<ChildEnv, EnvError> {
        let mut out = self.clone();
        if let Some(p) = platform_dir {
            for (k, v) in env_files(&p.join("env"))? {
                if is_path_var(&k) {
                    let cur = out.get(&k);
                    let nv = if cur.is_empty() {
                        v
                    } else {
                        format!("{v}:{cur}")
                    };
                    out.set(&k, nv);
                } else {
                    out.set(&k, v);
                }
            }
        }
        if let Some(b) = build_config_dir {
            out.add_env_dir(&b.join("env"), DefaultAction::Default)?;
        }
        Ok(out)
    }
}

/// Regular files (and symlinks to files) of `dir`, name-sorted, with raw contents. Missing dir = none.
fn env_files(dir: &Path) -> Result<Vec<(String, String)>, EnvError> {
    let err = |source| EnvError {
        dir: dir.to_path_buf(),
        source,
    };
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(err(e)),
    };
    let mut names = Vec::new();
    for entry in rd {
        let entry = entry.map_err(err)?;
        let path = entry.path();
        let meta = std::fs::metadata(&path).map_err(err)?;
        if meta.is_dir() {
            continue;
        }
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        let bytes = std::fs::read(dir.join(&n)).map_err(err)?;
        out.push((n, String::from_utf8_lossy(&bytes).into_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn env_01_only_allow_listed_variables_pass() {
        let env = ChildEnv::from_lifecycle(
            [
                ("CNB_REGISTRY_AUTH", "{\"r\":\"Basic x\"}"),
                ("DOCKER_CONFIG", "/secret"),
                ("HOME", "/home/cnb"),
                ("PATH", "/bin"),
                ("CNB_PLATFORM_API", "0.15"),
                ("http_proxy", "http://p"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let keys: Vec<_> = env.vars().map(|(k, _)| k).collect();
        assert_eq!(keys, ["HOME", "PATH", "http_proxy"]);
    }

    #[test]
    fn envm_rules_and_platform_overrides() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("env");
        std::fs::create_dir_all(&d).unwrap();
        for (n, v) in [
            ("A.prepend", "pre"),
            ("A.delim", ","),
            ("B.append", "post"),
            ("C.default", "dflt"),
            ("D.override", "over"),
            ("E", "plain"),
            ("F.unknown", "ignored"),
        ] {
            std::fs::write(d.join(n), v).unwrap();
        }
        let mut env = ChildEnv::default();
        env.set("A", "a");
        env.set("B", "b");
        env.set("C", "c");
        env.set("D", "d");
        env.add_env_dir(&d, DefaultAction::Override).unwrap();
        assert_eq!(env.get("A"), "pre,a");
        assert_eq!(env.get("B"), "bpost"); // no delim file: empty delimiter
        assert_eq!(env.get("C"), "c");
        assert_eq!(env.get("D"), "over");
        assert_eq!(env.get("E"), "plain");
        assert_eq!(env.get("F"), "");

        let plat = tmp.path().join("platform");
        std::fs::create_dir_all(plat.join("env")).unwrap();
        std::fs::write(plat.join("env/PATH"), "/user/bin").unwrap();
        std::fs::write(plat.join("env/FOO"), "bar\n").unwrap();
        env.set("PATH", "/bin");
        let o = env.with_overrides(Some(&plat), None).unwrap();
        assert_eq!(o.get("PATH"), "/user/bin:/bin");
        assert_eq!(o.get("FOO"), "bar\n");
        let cleared = env.with_overrides(None, None).unwrap();
        assert_eq!(cleared.get("FOO"), "");
    }

    #[test]
    fn env_08_root_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("bin")).unwrap();
        std::fs::create_dir_all(tmp.path().join("lib")).unwrap();
        let mut env = ChildEnv::default();
        env.set("PATH", "/bin");
        env.add_root_dir(tmp.path());
        let bin = tmp.path().join("bin").to_string_lossy().into_owned();
        assert_eq!(env.get("PATH"), format!("{bin}:/bin"));
        assert!(env.get("LIBRARY_PATH").ends_with("/lib"));
        assert_eq!(env.get("CPATH"), "");
    }
}

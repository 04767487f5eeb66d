//! Run-image target data for detection and the `CNB_TARGET_*` variables (platform spec "Target data",
//! buildpack spec "Targets"; checklist DS-12, ENV-04, ENV-05).

use std::path::Path;

use super::store::{Distro, Target};

/// The target of the run image the app will run on (analyzed.toml `[run-image.target]`), completed from
/// the build container's `/etc/os-release` when the distribution is missing.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct RunTarget {
    /// `os` (default `linux`).
    pub os: String,
    /// `arch` (default: the host architecture).
    pub arch: String,
    /// `arch-variant`.
    #[serde(rename = "arch-variant", skip_serializing_if = "String::is_empty")]
    pub arch_variant: String,
    /// `[distro]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distro: Option<Distro>,
}

/// The host architecture in OCI/Go spelling.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

impl RunTarget {
    /// Fills missing OS/arch with defaults and a missing distro from an `os-release` file (`ID`,
    /// `VERSION_ID`), as the reference does inside the build container.
    pub fn complete(mut self, os_release: &Path) -> Self {
        if self.os.is_empty() {
            self.os = "linux".into();
        }
        if self.arch.is_empty() {
            self.arch = host_arch().into();
        }
        if self.distro.is_none() {
            if let Ok(text) = std::fs::read_to_string(os_release) {
                let mut d = Distro::default();
                for line in text.lines() {
                    if let Some((k, v)) = line.split_once('=') {
                        let v = v.trim().trim_matches('"').to_string();
                        match k.trim() {
                            "ID" => d.name = v,
                            "VERSION_ID" => d.version = v,
                            _ => {}
                        }
                    }
                }
                if !d.name.is_empty() || !d.version.is_empty() {
                    self.distro = Some(d);
                }
            }
        }
        self
    }

    /// Whether a module target is satisfied: empty fields on either side match anything; a module
    /// that lists distros needs a matching run-image distro (checklist DS-12).
    pub fn satisfies(&self, t: &Target) -> bool {
        let m = |a: &str, b: &str| a.is_empty() || b.is_empty() || a == b;
        if !m(&self.os, &t.os) || !m(&self.arch, &t.arch) || !m(&self.arch_variant, &t.arch_variant)
        {
            return false;
        }
        if t.distros.is_empty() {
            return true;
        }
        let Some(d) = &self.distro else {
            return false;
        };
        t.distros
            .iter()
            .any(|x| m(&d.name, &x.name) && m(&d.version, &x.version))
    }

    /// `CNB_TARGET_OS`, `CNB_TARGET_ARCH` always; variant and distro only when non-empty (ENV-04).
    pub fn env_vars(&self) -> Vec<(String, String)> {
        let mut out = vec![
            ("CNB_TARGET_OS".to_string(), self.os.clone()),
            ("CNB_TARGET_ARCH".to_string(), self.arch.clone()),
        ];
        let mut opt = |k: &str, v: &str| {
            if !v.is_empty() {
                out.push((k.to_string(), v.to_string()));
            }
        };
        opt("CNB_TARGET_ARCH_VARIANT", &self.arch_variant);
        if let Some(d) = &self.distro {
            opt("CNB_TARGET_DISTRO_NAME", &d.name);
            opt("CNB_TARGET_DISTRO_VERSION", &d.version);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn env_05_distro_from_os_release_and_defaults() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("os-release");
        std::fs::write(&p, "NAME=\"Debian\"\nID=debian\nVERSION_ID=\"12\"\n").unwrap();
        let t = RunTarget::default().complete(&p);
        assert_eq!(t.os, "linux");
        assert_eq!(t.arch, host_arch());
        assert_eq!(
            t.distro,
            Some(Distro {
                name: "debian".into(),
                version: "12".into()
            })
        );
        let env = t.env_vars();
        assert!(env.contains(&("CNB_TARGET_DISTRO_NAME".into(), "debian".into())));
        assert!(!env.iter().any(|(k, _)| k == "CNB_TARGET_ARCH_VARIANT"));
    }

    #[test]
    fn ds_12_target_matching() {
        let run = RunTarget {
            os: "linux".into(),
            arch: "amd64".into(),
            arch_variant: String::new(),
            distro: Some(Distro {
                name: "ubuntu".into(),
                version: "22.04".into(),
            }),
        };
        assert!(run.satisfies(&Target::default()));
        assert!(run.satisfies(&Target {
            os: "linux".into(),
            ..Target::default()
        }));
        assert!(!run.satisfies(&Target {
            arch: "arm64".into(),
            ..Target::default()
        }));
        assert!(!run.satisfies(&Target {
            distros: vec![Distro {
                name: "ubuntu".into(),
                version: "18.04".into()
            }],
            ..Target::default()
        }));
    }
}

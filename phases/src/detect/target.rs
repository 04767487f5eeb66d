//! Run-image target data for detection and the `CNB_TARGET_*` variables (platform spec "Target data",
//! buildpack spec "Targets"; checklist DS-12, ENV-04, ENV-05).

use std::path::Path;

pub use cnb_spec::platform::{OsDistro, TargetMetadata as RunTarget};

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

/// Fills missing OS/arch with defaults and a missing distro from an `os-release` file (`ID`,
/// `VERSION_ID`), as the reference does inside the build container (ENV-05).
pub fn complete(mut t: RunTarget, os_release: &Path) -> RunTarget {
    if t.os.is_empty() {
        t.os = "linux".into();
    }
    if t.arch.is_empty() {
        t.arch = host_arch().into();
    }
    if t.distro.is_none() {
        if let Ok(text) = std::fs::read_to_string(os_release) {
            let mut d = OsDistro::default();
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
                t.distro = Some(d);
            }
        }
    }
    t
}

/// `CNB_TARGET_OS`, `CNB_TARGET_ARCH` always; variant and distro only when non-empty (ENV-04).
pub fn env_vars(t: &RunTarget) -> Vec<(String, String)> {
    let mut out = vec![
        ("CNB_TARGET_OS".to_string(), t.os.clone()),
        ("CNB_TARGET_ARCH".to_string(), t.arch.clone()),
    ];
    let mut opt = |k: &str, v: &str| {
        if !v.is_empty() {
            out.push((k.to_string(), v.to_string()));
        }
    };
    opt("CNB_TARGET_ARCH_VARIANT", &t.arch_variant);
    if let Some(d) = &t.distro {
        opt("CNB_TARGET_DISTRO_NAME", &d.name);
        opt("CNB_TARGET_DISTRO_VERSION", &d.version);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use cnb_spec::buildpack::Target;

    #[test]
    fn env_05_distro_from_os_release_and_defaults() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("os-release");
        std::fs::write(&p, "NAME=\"Debian\"\nID=debian\nVERSION_ID=\"12\"\n").unwrap();
        let t = complete(RunTarget::default(), &p);
        assert_eq!(t.os, "linux");
        assert_eq!(t.arch, host_arch());
        assert_eq!(
            t.distro,
            Some(OsDistro {
                name: "debian".into(),
                version: "12".into()
            })
        );
        let env = env_vars(&t);
        assert!(env.contains(&("CNB_TARGET_DISTRO_NAME".into(), "debian".into())));
        assert!(!env.iter().any(|(k, _)| k == "CNB_TARGET_ARCH_VARIANT"));
    }

    #[test]
    fn ds_12_target_matching() {
        let run = RunTarget {
            id: String::new(),
            arch_variant: String::new(),
            os: "linux".into(),
            arch: "amd64".into(),
            distro: Some(OsDistro {
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
            distros: vec![cnb_spec::buildpack::Distro {
                name: "ubuntu".into(),
                version: "18.04".into()
            }],
            ..Target::default()
        }));
    }
}

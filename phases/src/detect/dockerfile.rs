//! Validating the Dockerfiles extensions generate (image extension spec "Dockerfile requirements";
//! checklist GN-04…GN-06).

use std::path::{Path, PathBuf};

use parse_dockerfile::Instruction;

/// `build` or `run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DockerfileKind {
    /// `build.Dockerfile`: extends the build image.
    Build,
    /// `run.Dockerfile`: extends or switches the run image.
    Run,
}

impl DockerfileKind {
    /// `build` / `run`.
    pub fn as_str(self) -> &'static str {
        match self {
            DockerfileKind::Build => "build",
            DockerfileKind::Run => "run",
        }
    }
}

/// A validated Dockerfile an extension produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerfileInfo {
    /// The extension id.
    pub extension_id: String,
    /// Build or run.
    pub kind: DockerfileKind,
    /// Where it is.
    pub path: PathBuf,
    /// `FROM` text when a run.Dockerfile switches the base (not literally `${base_image}`).
    pub with_base: Option<String>,
    /// Whether it has instructions besides `FROM`.
    pub extend: bool,
    /// A later run.Dockerfile switches the base, so this one has no effect.
    pub ignore: bool,
}

/// Errors validating a Dockerfile or extend-config.toml.
#[derive(Debug, thiserror::Error)]
pub enum DockerfileError {
    /// Unreadable file.
    #[error("failed to read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not a Dockerfile, or it breaks a rule (the message is the reference's).
    #[error("failed to parse {kind}.Dockerfile for extension {extension}: {message} ({})", path.display())]
    Invalid {
        /// build or run.
        kind: &'static str,
        /// The extension id.
        extension: String,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// extend-config.toml is malformed or uses a reserved arg name.
    #[error("extension {extension}: {message} ({})", path.display())]
    ExtendConfig {
        /// The extension id.
        extension: String,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

const RECOMMENDED: &[&str] = &[
    "FROM", "ADD", "ARG", "COPY", "ENV", "LABEL", "RUN", "SHELL", "USER", "WORKDIR",
];

fn instruction_name(i: &Instruction<'_>) -> (&'static str, usize) {
    match i {
        Instruction::Add(x) => ("ADD", x.add.span.start),
        Instruction::Arg(x) => ("ARG", x.arg.span.start),
        Instruction::Cmd(x) => ("CMD", x.cmd.span.start),
        Instruction::Copy(x) => ("COPY", x.copy.span.start),
        Instruction::Entrypoint(x) => ("ENTRYPOINT", x.entrypoint.span.start),
        Instruction::Env(x) => ("ENV", x.env.span.start),
        Instruction::Expose(x) => ("EXPOSE", x.expose.span.start),
        Instruction::From(x) => ("FROM", x.from.span.start),
        Instruction::Healthcheck(x) => ("HEALTHCHECK", x.healthcheck.span.start),
        Instruction::Label(x) => ("LABEL", x.label.span.start),
        Instruction::Maintainer(x) => ("MAINTAINER", x.maintainer.span.start),
        Instruction::Onbuild(x) => ("ONBUILD", x.onbuild.span.start),
        Instruction::Run(x) => ("RUN", x.run.span.start),
        Instruction::Shell(x) => ("SHELL", x.shell.span.start),
        Instruction::Stopsignal(x) => ("STOPSIGNAL", x.stopsignal.span.start),
        Instruction::User(x) => ("USER", x.user.span.start),
        Instruction::Volume(x) => ("VOLUME", x.volume.span.start),
        Instruction::Workdir(x) => ("WORKDIR", x.workdir.span.start),
        _ => ("UNKNOWN", 0),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map(|s| s.bytes().filter(|b| *b == b'\n').count() + 1)
        .unwrap_or(0)
}

/// Validates a Dockerfile of `kind` at `path`; returns its info and any warnings (GN-05, GN-06).
pub fn validate(
    extension_id: &str,
    kind: DockerfileKind,
    path: &Path,
) -> Result<(DockerfileInfo, Vec<String>), DockerfileError> {
    let text = std::fs::read_to_string(path).map_err(|source| DockerfileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let invalid = |message: String| DockerfileError::Invalid {
        kind: kind.as_str(),
        extension: extension_id.to_string(),
        path: path.to_path_buf(),
        message,
    };
    let df = parse_dockerfile::parse(&text).map_err(|e| invalid(e.to_string()))?;
    let file = format!("{}.Dockerfile", kind.as_str());
    let stages: Vec<_> = df.stages().collect();
    if stages.len() > 1 {
        return Err(invalid(format!(
            "{file} is not permitted to use multistage build"
        )));
    }
    let mut warnings = Vec::new();
    let mut extend = false;
    for st in &stages {
        for i in st.instructions {
            extend = true;
            let (name, off) = instruction_name(i);
            if !RECOMMENDED.contains(&name) {
                warnings.push(format!(
                    "{file} command {name} on line {} is not recommended",
                    line_of(&text, off)
                ));
            }
        }
    }
    let mut with_base = None;
    match kind {
        DockerfileKind::Build => {
            let args: Vec<_> = df.global_args().collect();
            let ok = args.len() == 1 && {
                let a = args[0].arguments.value.trim();
                a.split('=').next().map(str::trim) == Some("base_image")
            };
            if !ok {
                return Err(invalid(
                    "build.Dockerfile did not start with required ARG command".into(),
                ));
            }
            let Some(st) = stages.first() else {
                return Err(invalid(format!("{file} should have at least one stage")));
            };
            if st.from.image.value.trim() != "${base_image}" {
                return Err(invalid(
                    "build.Dockerfile did not contain required FROM ${base_image} command".into(),
                ));
            }
        }
        DockerfileKind::Run => {
            let Some(st) = stages.first() else {
                return Err(invalid(format!("{file} should have at least one stage")));
            };
            let base = st.from.image.value.trim();
            if base != "${base_image}" {
                with_base = Some(base.to_string());
            }
        }
    }
    Ok((
        DockerfileInfo {
            extension_id: extension_id.to_string(),
            kind,
            path: path.to_path_buf(),
            with_base,
            extend,
            ignore: false,
        },
        warnings,
    ))
}

/// Validates `extend-config.toml` if present: `build_id`, `user_id`, `group_id` are reserved arg names
/// (GN-04).
pub fn validate_extend_config(extension_id: &str, path: &Path) -> Result<(), DockerfileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(DockerfileError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let err = |message: String| DockerfileError::ExtendConfig {
        extension: extension_id.to_string(),
        path: path.to_path_buf(),
        message,
    };
    let doc: toml::Table =
        toml::from_str(&text).map_err(|e| err(format!("reading extend config: {e}")))?;
    for section in ["build", "run"] {
        let args = doc
            .get(section)
            .and_then(|s| s.get("args"))
            .and_then(|a| a.as_array());
        for a in args.into_iter().flatten() {
            let name = a.get("name").and_then(|n| n.as_str()).unwrap_or("");
            if ["build_id", "user_id", "group_id"].contains(&name) {
                return Err(err(format!(
                    "validating extend config: invalid content: arg with name \"{name}\" is not allowed"
                )));
            }
        }
    }
    Ok(())
}

/// Walks run.Dockerfiles from the last extension backwards: the last one that switches the base sets
/// the new run image and every earlier one is ignored; `extend` is whether any non-ignored one has
/// instructions (GN-09).
pub fn select_run_image(dockerfiles: &mut [DockerfileInfo]) -> (Option<String>, bool) {
    let mut new_base = None;
    let mut extend = false;
    let mut ignore_next = false;
    for d in dockerfiles.iter_mut().rev() {
        if d.kind != DockerfileKind::Run {
            continue;
        }
        if ignore_next {
            d.ignore = true;
            continue;
        }
        extend |= d.extend;
        if let Some(b) = &d.with_base {
            new_base = Some(b.clone());
            ignore_next = true;
        }
    }
    (new_base, extend)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn check(kind: DockerfileKind, body: &str) -> Result<(DockerfileInfo, Vec<String>), String> {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("Dockerfile");
        std::fs::write(&p, body).unwrap();
        validate("ext", kind, &p).map_err(|e| e.to_string())
    }

    #[test]
    fn gn_05_build_dockerfile_rules() {
        let (i, w) = check(
            DockerfileKind::Build,
            "ARG base_image\nFROM ${base_image}\nRUN apt-get update\nCMD [\"x\"]\n",
        )
        .unwrap();
        assert!(i.extend);
        assert_eq!(
            w,
            ["build.Dockerfile command CMD on line 4 is not recommended"]
        );
        let e = check(DockerfileKind::Build, "FROM ${base_image}\nRUN x\n").unwrap_err();
        assert!(e.contains("did not start with required ARG command"), "{e}");
        let e = check(DockerfileKind::Build, "ARG base_image\nFROM debian\n").unwrap_err();
        assert!(e.contains("required FROM ${base_image} command"), "{e}");
        let e = check(
            DockerfileKind::Build,
            "ARG base_image\nFROM ${base_image}\nFROM ${base_image}\n",
        )
        .unwrap_err();
        assert!(e.contains("multistage"), "{e}");
    }

    #[test]
    fn gn_06_run_dockerfile_switch_and_extend() {
        let (i, _) = check(DockerfileKind::Run, "FROM registry.example/run:2\n").unwrap();
        assert_eq!(i.with_base.as_deref(), Some("registry.example/run:2"));
        assert!(!i.extend);
        let (i, _) = check(
            DockerfileKind::Run,
            "ARG base_image\nFROM ${base_image}\nRUN echo\n",
        )
        .unwrap();
        assert_eq!(i.with_base, None);
        assert!(i.extend);
    }

    #[test]
    fn gn_09_last_switch_wins_and_earlier_are_ignored() {
        let mk = |id: &str, base: Option<&str>, extend: bool| DockerfileInfo {
            extension_id: id.into(),
            kind: DockerfileKind::Run,
            path: PathBuf::new(),
            with_base: base.map(str::to_string),
            extend,
            ignore: false,
        };
        let mut v = vec![
            mk("a", None, true),
            mk("b", Some("img:b"), false),
            mk("c", None, true),
        ];
        let (base, extend) = select_run_image(&mut v);
        assert_eq!(base.as_deref(), Some("img:b"));
        assert!(extend);
        assert!(v[0].ignore && !v[1].ignore && !v[2].ignore);
    }

    #[test]
    fn gn_04_reserved_args() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("extend-config.toml");
        std::fs::write(&p, "[[build.args]]\nname = \"user_id\"\nvalue = \"0\"\n").unwrap();
        let e = validate_extend_config("ext", &p).unwrap_err().to_string();
        assert!(
            e.contains("arg with name \"user_id\" is not allowed"),
            "{e}"
        );
        std::fs::write(&p, "[[run.args]]\nname = \"ok\"\nvalue = \"0\"\n").unwrap();
        assert!(validate_extend_config("ext", &p).is_ok());
    }
}

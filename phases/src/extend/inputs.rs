//! Finding what to extend from the platform files (checklist EX-01, EX-02): the image reference in
//! `analyzed.toml`, the extensions in `group.toml`, each one's `<kind>.Dockerfile`, build args from
//! `extend-config.toml` and build context.
//! The files are read with the `cnb_spec` types (unknown keys are ignored).

use std::path::{Path, PathBuf};

use cnb_spec::buildpack::ExtendConfig;
use cnb_spec::platform::{Analyzed, Group};

use crate::cli::Inputs;

use super::Kind;

use super::apply::ExtensionInput;
use super::dockerfile::{self, DockerfileError};

/// Failures reading platform files.
#[derive(Debug, thiserror::Error)]
pub enum InputsError {
    /// A file could not be read or parsed.
    #[error("{path}: {message}")]
    File {
        /// Path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A platform file could not be read or decoded (the error names the file).
    #[error(transparent)]
    Spec(#[from] cnb_spec::io::FileError),
    /// A Dockerfile is unusable.
    #[error(transparent)]
    Dockerfile(#[from] DockerfileError),
}

/// What the phase will do.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Where the restorer leaves the base image's manifest and config (`<kaniko>/cache/base/<digest>`,
    /// the reference's sparse layout).
    pub base_layout: PathBuf,
    /// The OCI layout the reference itself names (layout mode, `-layout`: `<layout dir>/…@sha256:…`),
    /// when that directory exists; it holds the layers too.
    pub layout_path: Option<PathBuf>,
    /// Manifest digest in it.
    pub base_digest: Option<String>,
    /// `base_image` value.
    pub base_ref: String,
    /// Dockerfiles in group order.
    pub extensions: Vec<ExtensionInput>,
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Build => "build",
        Kind::Run => "run",
    }
}

/// Reads `extend-config.toml`'s `[[<kind>.args]]` (missing file: no args).
pub fn read_args(path: &Path, kind: Kind) -> Result<Vec<(String, String)>, InputsError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let config = ExtendConfig::read(path)?;
    config
        .args_for(kind_name(kind))
        .iter()
        .map(|a| match a.name.as_str() {
            n @ ("build_id" | "user_id" | "group_id") => Err(InputsError::File {
                path: path.to_path_buf(),
                message: format!("invalid content: arg with name \"{n}\" is not allowed"),
            }),
            "" => Err(InputsError::File {
                path: path.to_path_buf(),
                message: "an arg has no name".into(),
            }),
            n => Ok((n.to_string(), a.value.clone())),
        })
        .collect()
}

/// Where generation puts extension `id`'s Dockerfile of `kind` (checklist GN-03): `flat` (Platform API
/// ≥ 0.13) `<generated>/<escaped id>/<kind>.Dockerfile`, else `<generated>/<kind>/<escaped id>/Dockerfile`.
pub fn dockerfile_path(generated: &Path, id: &str, kind: Kind, flat: bool) -> PathBuf {
    let escaped = id.replace('/', "_");
    let k = kind_name(kind);
    if flat {
        generated.join(escaped).join(format!("{k}.Dockerfile"))
    } else {
        generated.join(k).join(escaped).join("Dockerfile")
    }
}

/// The Dockerfiles of `extension_ids` (group order) for `kind` under `generated`, skipping
/// extensions without one and `.ignore`d ones.
pub fn dockerfiles(
    generated: &Path,
    app: &Path,
    extension_ids: &[String],
    kind: Kind,
    flat: bool,
) -> Result<Vec<ExtensionInput>, InputsError> {
    let k = kind_name(kind);
    let mut out = Vec::new();
    for id in extension_ids {
        let df = dockerfile_path(generated, id, kind, flat);
        let ext_dir = df.parent().unwrap_or(generated).to_path_buf();
        let config = ext_dir.join("extend-config.toml");
        if !df.is_file() {
            continue;
        }
        let context = if !flat {
            app.to_path_buf()
        } else if ext_dir.join(format!("context.{k}")).is_dir() {
            ext_dir.join(format!("context.{k}"))
        } else if ext_dir.join("context").is_dir() {
            ext_dir.join("context")
        } else {
            app.to_path_buf()
        };
        out.push(ExtensionInput {
            dockerfile: dockerfile::read(id, &df)?,
            context,
            args: read_args(&config, kind)?,
        });
    }
    Ok(out)
}

/// The `kind` Dockerfiles of the extensions in `group.toml` (group order), from the generated dir.
pub fn group_dockerfiles(inputs: &Inputs, kind: Kind) -> Result<Vec<ExtensionInput>, InputsError> {
    let group = Group::read(&inputs.group_path)?;
    let ids: Vec<String> = group
        .group_extensions
        .iter()
        .map(|e| e.id.clone())
        .collect();
    dockerfiles(
        &inputs.generated_dir,
        &inputs.app_dir,
        &ids,
        kind,
        inputs.platform_api.generated_flat_layout(),
    )
}

/// Resolves the plan from the phase inputs.
pub fn resolve(inputs: &Inputs, kind: Kind, kaniko_dir: &Path) -> Result<Plan, InputsError> {
    let extensions = group_dockerfiles(inputs, kind)?;
    let analyzed = Analyzed::read(&inputs.analyzed_path)?;
    let (table, reference) = match kind {
        Kind::Build => (
            "build-image",
            analyzed
                .build_image
                .map(|i| i.reference)
                .unwrap_or_default(),
        ),
        Kind::Run => (
            "run-image",
            analyzed.run_image.map(|i| i.reference).unwrap_or_default(),
        ),
    };
    if reference.is_empty() && !extensions.is_empty() {
        return Err(InputsError::File {
            path: inputs.analyzed_path.clone(),
            message: format!("no {table}.reference to extend"),
        });
    }
    let (name, digest) = match reference.split_once('@') {
        Some((n, d)) => (n, Some(d.to_string())),
        None => (reference.as_str(), None),
    };
    // Layout mode records `<layout path>@<digest>`; a bare layout path works too.
    let layout_path =
        Some(PathBuf::from(name)).filter(|p| p.is_absolute() && p.join("index.json").is_file());
    let base_layout = match &digest {
        Some(d) => kaniko_dir.join("cache").join("base").join(d),
        // A tag reference (local use without a restorer): fetched under a name of its own.
        None => layout_path.clone().unwrap_or_else(|| {
            kaniko_dir
                .join("cache")
                .join("base")
                .join(name.replace(['/', ':'], "_"))
        }),
    };
    Ok(Plan {
        base_layout,
        layout_path,
        base_digest: digest,
        base_ref: reference,
        extensions,
    })
}

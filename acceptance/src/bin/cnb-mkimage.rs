//! `cnb-mkimage`: a developer tool that writes root filesystem directories as an OCI image layout with the
//! project's own layer builder and layout writer (`cnb_lifecycle::archive`, `cnb_lifecycle::image`, through
//! [`cnb_acceptance::images::write_image`]). The sample base-image recipes (`samples/base-images/*/build.sh`)
//! and `make image` use it.
//!
//! ```text
//! cnb-mkimage --layout DIR [--tag latest] --rootfs DIR [--rootfs DIR ...] [--owner UID:GID]
//!             [--build-user UID:GID] [--user USER] [--env K=V ...] [--label K=V ...]
//!             [--base ID,DISTRO,VERSION,DESCRIPTION,HOMEPAGE] [--workdir DIR]
//!             [--entrypoint JSON-ARRAY] [--cmd JSON-ARRAY] [--compression gzip|zstd|none]
//!             [--created SECONDS] [--lifecycle-toml FILE] [--arch amd64|arm64|...]
//! ```
//! Each `--rootfs` becomes one layer (bottom first). Entries keep their host owner unless `--owner` is
//! given; device nodes, fifos and sockets are left out (reported on stderr). `--lifecycle-toml` adds the
//! labels the reference puts on its lifecycle image (`make image`); `--arch` sets the config's architecture
//! (default: this machine's). Prints the manifest digest.

use std::path::PathBuf;
use std::process::ExitCode;

use cnb_acceptance::images::{
    apply_lifecycle_descriptor, rootfs_layer, write_image, BaseLabels, ImageLayer, ImageSpec,
};
use cnb_lifecycle::archive::Compression;

const USAGE: &str = "usage: cnb-mkimage --layout DIR [--tag TAG] --rootfs DIR [--rootfs DIR ...] \
[--owner UID:GID] [--build-user UID:GID] [--user USER] [--env K=V] [--label K=V] \
[--base ID,DISTRO,VERSION,DESCRIPTION,HOMEPAGE] [--workdir DIR] [--entrypoint JSON] [--cmd JSON] \
[--compression gzip|zstd|none] [--created SECONDS] [--lifecycle-toml FILE] [--arch ARCH]";

struct Args {
    layout: PathBuf,
    rootfs: Vec<PathBuf>,
    owner: Option<(u32, u32)>,
    spec: ImageSpec,
}

fn ids(flag: &str, v: &str) -> Result<(u32, u32), String> {
    let (u, g) = v
        .split_once(':')
        .ok_or_else(|| format!("{flag}: want UID:GID, got '{v}'"))?;
    let p = |s: &str| {
        s.parse::<u32>()
            .map_err(|_| format!("{flag}: '{s}' is not a number"))
    };
    Ok((p(u)?, p(g)?))
}

fn pair(flag: &str, v: &str) -> Result<(String, String), String> {
    v.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{flag}: want KEY=VALUE, got '{v}'"))
}

fn json_array(flag: &str, v: &str) -> Result<Vec<String>, String> {
    serde_json::from_str(v).map_err(|e| format!("{flag}: want a JSON array of strings: {e}"))
}

fn parse(argv: Vec<String>) -> Result<Args, String> {
    let mut layout = None;
    let mut rootfs = Vec::new();
    let mut owner = None;
    let mut spec = ImageSpec::default();
    let mut it = argv.into_iter();
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.into());
        }
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) if n.starts_with('-') => (n.to_string(), Some(v.to_string())),
            _ => (flag.clone(), None),
        };
        let name = name.trim_start_matches('-').to_string();
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("--{name} needs a value\n{USAGE}"))
        };
        match name.as_str() {
            "layout" => layout = Some(PathBuf::from(value()?)),
            "tag" => spec.tag = value()?,
            "rootfs" => rootfs.push(PathBuf::from(value()?)),
            "owner" => owner = Some(ids("--owner", &value()?)?),
            "build-user" => {
                let (u, g) = ids("--build-user", &value()?)?;
                spec.build_user(u, g);
            }
            "user" => spec.user = Some(value()?),
            "env" => spec.env.push(pair("--env", &value()?)?),
            "label" => spec.labels.push(pair("--label", &value()?)?),
            "base" => {
                let v = value()?;
                let f: Vec<&str> = v.splitn(5, ',').collect();
                let [id, distro_name, distro_version, description, homepage] = f[..] else {
                    return Err(format!(
                        "--base: want ID,DISTRO,VERSION,DESCRIPTION,HOMEPAGE, got '{v}'"
                    ));
                };
                spec.base_labels(&BaseLabels {
                    id,
                    distro_name,
                    distro_version,
                    description,
                    homepage,
                });
            }
            "lifecycle-toml" => {
                let path = value()?;
                let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
                apply_lifecycle_descriptor(&mut spec, &text)?;
            }
            "workdir" => spec.working_dir = Some(value()?),
            "arch" => spec.architecture = Some(value()?),
            "entrypoint" => spec.entrypoint = Some(json_array("--entrypoint", &value()?)?),
            "cmd" => spec.cmd = Some(json_array("--cmd", &value()?)?),
            "compression" => {
                spec.compression = match value()?.as_str() {
                    "gzip" => Compression::Gzip { level: 6 },
                    "zstd" => Compression::Zstd { level: 3 },
                    "none" => Compression::None,
                    other => return Err(format!("--compression: unknown '{other}'")),
                }
            }
            "created" => {
                let v = value()?;
                spec.created = v
                    .parse()
                    .map_err(|_| format!("--created: '{v}' is not a number of seconds"))?;
            }
            _ => return Err(format!("unknown argument '{flag}'\n{USAGE}")),
        }
    }
    let layout = layout.ok_or_else(|| format!("--layout is required\n{USAGE}"))?;
    if rootfs.is_empty() {
        return Err(format!("at least one --rootfs is required\n{USAGE}"));
    }
    Ok(Args {
        layout,
        rootfs,
        owner,
        spec,
    })
}

fn run(args: Args) -> Result<String, String> {
    let mut layers = Vec::new();
    for (n, dir) in args.rootfs.iter().enumerate() {
        let (layer, skipped) = rootfs_layer(dir, args.owner)?;
        if !skipped.special.is_empty() {
            eprintln!(
                "cnb-mkimage: {}: left out {} device node(s)/fifo(s)/socket(s): {}",
                dir.display(),
                skipped.special.len(),
                skipped.special.join(" ")
            );
        }
        layers.push(ImageLayer {
            layer,
            // No host path here: the same tree gives the same image wherever it was staged.
            created_by: format!("cnb-mkimage: root filesystem layer {}", n + 1),
        });
    }
    let written = write_image(&args.layout, layers, &args.spec)?;
    Ok(written.manifest_digest)
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1).collect()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(digest) => {
            println!("{digest}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ERROR: cnb-mkimage: {e}");
            ExitCode::FAILURE
        }
    }
}

//! How the lifecycle ships (issue 18): SBOMs of our own binaries in CycloneDX 1.5 and SPDX 2.3 (structure
//! checks the formats require, and every crate of `Cargo.lock` that is linked in, with name, version,
//! licence and purl), the `make package` tarball in the reference's release layout, and a version that
//! passes the gates pack applies to a lifecycle.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::fs;
use std::process::Command;

use cnb_acceptance::harness::{bin_dir, tool, workspace_dir, PHASE_LINKS};
use serde_json::Value;

fn json(path: &std::path::Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

/// (name, version) of every package in Cargo.lock.
fn locked_packages() -> BTreeSet<(String, String)> {
    let lock: toml::Table = fs::read_to_string(workspace_dir().join("Cargo.lock"))
        .unwrap()
        .parse()
        .unwrap();
    lock["package"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["version"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn is_purl_of(purl: &str, name: &str, version: &str) -> bool {
    purl == format!("pkg:cargo/{name}@{version}")
}

#[test]
fn cyclonedx_sboms_have_the_required_structure() {
    let locked = locked_packages();
    for component in ["lifecycle", "launcher"] {
        let v = json(&bin_dir().join(format!("{component}.sbom.cdx.json")));
        assert_eq!(v["bomFormat"], "CycloneDX");
        assert_eq!(v["specVersion"], "1.5");
        assert_eq!(v["version"], 1);
        let serial = v["serialNumber"].as_str().unwrap();
        assert!(
            serial.starts_with("urn:uuid:") && serial.len() == 45,
            "{serial}"
        );
        assert_eq!(v["metadata"]["component"]["type"], "application");
        assert_eq!(v["metadata"]["component"]["name"], component);
        let comps = v["components"].as_array().unwrap();
        assert!(comps.len() > 50, "{component}: {} components", comps.len());
        let mut refs = BTreeSet::new();
        for c in comps {
            let (name, version) = (c["name"].as_str().unwrap(), c["version"].as_str().unwrap());
            assert_eq!(c["type"], "library");
            assert!(
                locked.contains(&(name.into(), version.into())),
                "{name} {version} not in Cargo.lock"
            );
            assert!(is_purl_of(c["purl"].as_str().unwrap(), name, version));
            let lic = c["licenses"].as_array().unwrap();
            assert!(!lic.is_empty(), "{name}: no licence");
            assert!(lic[0]["expression"].as_str().is_some_and(|e| !e.is_empty()));
            assert!(
                refs.insert(c["bom-ref"].as_str().unwrap().to_string()),
                "duplicate bom-ref"
            );
        }
        let names: BTreeSet<&str> = comps.iter().map(|c| c["name"].as_str().unwrap()).collect();
        for must in ["cnb-spec", "tar", "flate2", "serde", "toml", "nix"] {
            assert!(names.contains(must), "{component} SBOM lacks {must}");
        }
        for not in ["proptest", "yaml-rust2", "serde_derive"] {
            assert!(
                !names.contains(not),
                "{component} SBOM lists {not} (dev-only or a proc macro)"
            );
        }
        refs.insert(
            v["metadata"]["component"]["bom-ref"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        for d in v["dependencies"].as_array().unwrap() {
            assert!(refs.contains(d["ref"].as_str().unwrap()));
            for on in d["dependsOn"].as_array().unwrap() {
                assert!(refs.contains(on.as_str().unwrap()), "dangling {on}");
            }
        }
    }
}

#[test]
fn spdx_sboms_have_the_required_structure() {
    let locked = locked_packages();
    for component in ["lifecycle", "launcher"] {
        let v = json(&bin_dir().join(format!("{component}.sbom.spdx.json")));
        assert_eq!(v["spdxVersion"], "SPDX-2.3");
        assert_eq!(v["dataLicense"], "CC0-1.0");
        assert_eq!(v["SPDXID"], "SPDXRef-DOCUMENT");
        assert!(v["name"].as_str().is_some_and(|n| !n.is_empty()));
        assert!(v["documentNamespace"]
            .as_str()
            .unwrap()
            .starts_with("https://"));
        let created = v["creationInfo"]["created"].as_str().unwrap();
        assert!(created.len() == 20 && created.ends_with('Z'), "{created}");
        assert!(!v["creationInfo"]["creators"].as_array().unwrap().is_empty());
        let mut ids = BTreeSet::new();
        for p in v["packages"].as_array().unwrap() {
            let id = p["SPDXID"].as_str().unwrap();
            assert!(id.starts_with("SPDXRef-"));
            assert!(
                id["SPDXRef-".len()..]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'),
                "{id}"
            );
            assert!(ids.insert(id.to_string()), "duplicate {id}");
            for field in [
                "name",
                "versionInfo",
                "downloadLocation",
                "licenseConcluded",
                "licenseDeclared",
                "copyrightText",
            ] {
                assert!(
                    p[field].as_str().is_some_and(|s| !s.is_empty()),
                    "{id}: {field}"
                );
            }
            assert_eq!(p["filesAnalyzed"], false);
            let purl = p["externalRefs"][0]["referenceLocator"].as_str().unwrap();
            assert_eq!(p["externalRefs"][0]["referenceType"], "purl");
            assert_eq!(p["externalRefs"][0]["referenceCategory"], "PACKAGE-MANAGER");
            let (name, version) = (
                p["name"].as_str().unwrap(),
                p["versionInfo"].as_str().unwrap(),
            );
            if name != component {
                assert!(
                    locked.contains(&(name.into(), version.into())),
                    "{name} {version}"
                );
                assert!(is_purl_of(purl, name, version));
                assert_ne!(p["licenseDeclared"], "NOASSERTION", "{name}: no licence");
            }
        }
        let described = v["documentDescribes"][0].as_str().unwrap();
        assert!(ids.contains(described));
        for r in v["relationships"].as_array().unwrap() {
            let from = r["spdxElementId"].as_str().unwrap();
            assert!(from == "SPDXRef-DOCUMENT" || ids.contains(from));
            assert!(ids.contains(r["relatedSpdxElement"].as_str().unwrap()));
            assert!(["DESCRIBES", "DEPENDS_ON"].contains(&r["relationshipType"].as_str().unwrap()));
        }
    }
}

#[test]
fn sboms_are_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    for d in ["a", "b"] {
        let out = Command::new("sh")
            .arg(workspace_dir().join("tools/sboms.sh"))
            .arg(tmp.path().join(d))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    for f in cnb_acceptance::harness::sbom_files() {
        assert_eq!(
            fs::read(tmp.path().join("a").join(&f)).unwrap(),
            fs::read(tmp.path().join("b").join(&f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn package_tarball_has_the_reference_release_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let tgz = |name: &str| {
        let p = tmp.path().join(name);
        let out = Command::new("sh")
            .arg(workspace_dir().join("tools/package-lifecycle.sh"))
            .arg(bin_dir())
            .arg(&p)
            .env("PACKAGE_GZIP_LEVEL", "1") // the debug binaries are large; the layout is the point
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        p
    };
    let a = tgz("a.tgz");
    let listing = tool("tar", &["-tvzf", a.to_str().unwrap(), "--numeric-owner"]);
    let names: Vec<&str> = listing
        .lines()
        .map(|l| l.split_whitespace().nth(5).unwrap())
        .collect();
    assert_eq!(names[0], "lifecycle.toml", "{listing}");
    assert!(names.contains(&"lifecycle/"));
    for b in [
        "lifecycle/lifecycle",
        "lifecycle/launcher",
        "lifecycle/lifecycle.sbom.cdx.json",
    ] {
        assert!(names.contains(&b), "{b} missing:\n{listing}");
    }
    for p in PHASE_LINKS {
        let line = listing
            .lines()
            .find(|l| l.contains(&format!("lifecycle/{p} -> lifecycle")))
            .unwrap_or_else(|| panic!("lifecycle/{p} is not a symlink to lifecycle:\n{listing}"));
        assert!(line.starts_with('l'), "{line}");
    }
    for l in listing.lines() {
        assert!(l.contains(" 0/0 "), "not owned by 0:0: {l}");
        assert!(l.contains("1980-01-01"), "not normalised: {l}");
    }
    // One copy of the binary: the tarball is about one lifecycle + one launcher in size.
    let size = fs::metadata(&a).unwrap().len();
    let bins = fs::metadata(bin_dir().join("lifecycle")).unwrap().len()
        + fs::metadata(bin_dir().join("launcher")).unwrap().len();
    assert!(size < bins, "package {size} bytes vs binaries {bins}");
    // lifecycle.toml is the descriptor pack reads: version and APIs.
    let x = tmp.path().join("x");
    fs::create_dir(&x).unwrap();
    tool(
        "tar",
        &["-xzf", a.to_str().unwrap(), "-C", x.to_str().unwrap()],
    );
    let d: toml::Table = fs::read_to_string(x.join("lifecycle.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        d["lifecycle"]["version"].as_str().unwrap(),
        env!("CARGO_PKG_VERSION")
    );
    assert!(d["apis"]["platform"]["supported"].as_array().unwrap().len() >= 9);
    let out = Command::new(x.join("lifecycle/creator"))
        .arg("-version")
        .env("CNB_PLATFORM_API", "0.15")
        .output()
        .unwrap();
    assert!(out.status.success());
    // Reproducible.
    assert_eq!(fs::read(&a).unwrap(), fs::read(tgz("b.tgz")).unwrap());
}

/// Semantic version precedence (semver 2.0 §11), as pack's Masterminds/semver compares.
fn semver_key(v: &str) -> ((u64, u64, u64), Vec<String>) {
    let v = v.split('+').next().unwrap();
    let (core, pre) = v.split_once('-').map_or((v, None), |(c, p)| (c, Some(p)));
    let n: Vec<u64> = core.split('.').map(|x| x.parse().unwrap()).collect();
    assert_eq!(n.len(), 3, "{v} is not major.minor.patch");
    (
        (n[0], n[1], n[2]),
        pre.map(|p| p.split('.').map(String::from).collect())
            .unwrap_or_default(),
    )
}

fn at_least(v: &str, min: &str) -> bool {
    let (a, b) = (semver_key(v), semver_key(min));
    if a.0 != b.0 {
        return a.0 > b.0;
    }
    // Same core: a pre-release is lower than the release.
    match (a.1.is_empty(), b.1.is_empty()) {
        (true, _) => true,
        (false, true) => false,
        (false, false) => a.1 >= b.1,
    }
}

#[test]
fn version_passes_the_gates_pack_applies() {
    let v = env!("CARGO_PKG_VERSION");
    // pack (internal/build, pkg/client/build.go): creator from 0.7.4, lifecycle image from 0.7.5, creator with
    // extensions from 0.19.0.
    for gate in ["0.7.4", "0.7.5", "0.19.0"] {
        assert!(at_least(v, gate), "{v} is below pack's {gate} gate");
    }
    // A pre-release tag: never the same tag as a reference release (buildpacksio/lifecycle:<version>),
    // so pack never silently pulls the reference lifecycle in place of ours; and a valid image tag.
    assert!(
        v.contains('-'),
        "{v} could collide with a reference release tag"
    );
    assert!(
        v.len() <= 128
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
        "{v} is not a valid image tag"
    );
    let out = Command::new(bin_dir().join("lifecycle"))
        .arg("-version")
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        printed == v || printed.starts_with(&format!("{v}+")),
        "{printed}"
    );
}

/// `make image-index` (linux/amd64 + linux/arm64): per-architecture layouts written with
/// `cnb-mkimage --arch`, merged by tools/oci-index.py into one tag naming an image index whose entries
/// carry the platform from each config; skopeo picks the right one per architecture. (The images here
/// hold a file, not cross-built binaries: this checks the index machinery; `make arm64-smoke` runs the
/// arm64 binaries.)
#[test]
fn image_index_carries_one_manifest_per_platform() {
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = tmp.path().join("rootfs");
    fs::create_dir_all(rootfs.join("cnb/lifecycle")).unwrap();
    fs::write(rootfs.join("cnb/lifecycle/marker"), "x").unwrap();
    let mut layouts = Vec::new();
    for arch in ["amd64", "arm64"] {
        let l = tmp.path().join(arch);
        let out = Command::new(env!("CARGO_BIN_EXE_cnb-mkimage"))
            .arg(format!("--layout={}", l.display()))
            .args(["--tag", "v1", "--arch", arch, "--owner", "0:0", "--rootfs"])
            .arg(&rootfs)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        layouts.push(l);
    }
    let merged = tmp.path().join("index");
    let out = Command::new("python3")
        .arg(workspace_dir().join("tools/oci-index.py"))
        .arg(&merged)
        .arg("v1")
        .args(&layouts)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let raw = tool(
        "skopeo",
        &["inspect", "--raw", &format!("oci:{}:v1", merged.display())],
    );
    let index: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let platforms: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["platform"]["os"].as_str().unwrap().to_string(),
                m["platform"]["architecture"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        platforms,
        [
            ("linux".into(), "amd64".into()),
            ("linux".into(), "arm64".into())
        ]
    );
    for arch in ["amd64", "arm64"] {
        let cfg = tool(
            "skopeo",
            &[
                "inspect",
                "--override-arch",
                arch,
                &format!("oci:{}:v1", merged.display()),
            ],
        );
        let v: Value = serde_json::from_str(&cfg).unwrap();
        assert_eq!(v["Architecture"], arch);
    }
    let copy = tmp.path().join("copy");
    tool(
        "skopeo",
        &[
            "copy",
            "--all",
            &format!("oci:{}:v1", merged.display()),
            &format!("oci:{}:v1", copy.display()),
        ],
    );
}

//! The OCI layout store and the image abstraction, checked with independent tools (oci-image-tool, skopeo,
//! umoci) and a real loopback registry (checklist IM-01, IM-20, IM-30, IM-31, G-21).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use cnb_acceptance::images::{busybox, busybox_copy};
use cnb_lifecycle::archive::{Compression, LayerBuilder, Meta, Sink, Source};
use cnb_lifecycle::image::layout::{path_for_reference, Layout, Selector};
use cnb_lifecycle::image::oci::{self, Descriptor, Index, Platform};
use cnb_lifecycle::image::{Digest, Image, ImageBuilder};

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// oci-image-tool (schemas, blob presence/sizes), skopeo (digests), umoci (diffIDs, real extraction).
fn check_with_tools(layout: &Path, tag: &str, scratch: &Path) -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let scratch = &scratch.join(format!(
        "check-{}",
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    oci_image_tool_validate(layout, tag, scratch);
    let copy = scratch.join(format!("skopeo-copy-{tag}"));
    run(
        "skopeo",
        &[
            "copy",
            "-q",
            &format!("oci:{}:{tag}", layout.display()),
            &format!("oci:{}:{tag}", copy.display()),
        ],
    );
    let bundle = scratch.join(format!("bundle-{tag}"));
    run(
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:{tag}", layout.display()),
            &bundle.display().to_string(),
        ],
    );
    bundle.join("rootfs")
}

/// oci-image-tool 1.0.0~rc3 wrongly reports "descriptor retrieved by refs is not unique" once `index.json`
/// lists three or more images, so it validates a view of the layout whose `index.json` holds only `tag`'s
/// entry (blobs hard-linked; the tool refuses a symlinked `blobs`).
fn oci_image_tool_validate(layout: &Path, tag: &str, scratch: &Path) {
    let view = scratch.join(format!("oit-view-{}", tag.replace([':', '/'], "_")));
    let _ = fs::remove_dir_all(&view);
    fs::create_dir_all(&view).unwrap();
    fs::create_dir_all(view.join("blobs/sha256")).unwrap();
    for e in fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        fs::hard_link(e.path(), view.join("blobs/sha256").join(e.file_name())).unwrap();
    }
    fs::copy(layout.join("oci-layout"), view.join("oci-layout")).unwrap();
    let mut idx: Index =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    idx.manifests.retain(|d| d.ref_name() == Some(tag));
    assert_eq!(
        idx.manifests.len(),
        1,
        "tag {tag} must be listed exactly once"
    );
    fs::write(view.join("index.json"), serde_json::to_vec(&idx).unwrap()).unwrap();
    run(
        "oci-image-tool",
        &[
            "validate",
            "--type",
            "image",
            "--ref",
            &format!("name={tag}"),
            &view.display().to_string(),
        ],
    );
}

fn layer_from(
    dir: &Path,
    files: &[(&str, &str)],
    dest: &Layout,
) -> cnb_lifecycle::archive::LayerInfo {
    fs::create_dir_all(dir).unwrap();
    for (n, c) in files {
        fs::write(dir.join(n), c).unwrap();
    }
    let mut b = LayerBuilder::new();
    b.add_tree(dir, "/layers/bp/layer", 1000, 1000);
    b.write(Compression::default(), Sink::BlobDir(dest.blob_dir()))
        .unwrap()
}

#[test]
fn busybox_base_image_passes_independent_tools() {
    let img = busybox();
    let t = tempfile::tempdir().unwrap();
    let rootfs = check_with_tools(&img.layout, &img.tag, t.path());
    assert!(rootfs.join("bin/busybox").is_file());
    assert_eq!(
        fs::read_link(rootfs.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    assert!(fs::read_to_string(rootfs.join("etc/passwd"))
        .unwrap()
        .contains("cnb:x:1000:1000:"));
    let image = Image::from_layout(&img.layout, &Selector::Tag(img.tag.clone()), None).unwrap();
    assert_eq!(image.env_var("CNB_USER_ID").as_deref(), Some("1000"));
    assert_eq!(image.env_var("CNB_GROUP_ID").as_deref(), Some("1000"));
    assert_eq!(
        image.label("io.buildpacks.stack.id"),
        Some(cnb_acceptance::images::STACK_ID)
    );
    assert_eq!(
        image.config().config.as_ref().unwrap().user.as_deref(),
        Some("1000:1000")
    );
    assert_eq!(image.manifest_media_type(), oci::OCI_MANIFEST);
    assert_eq!(
        image.config().created.as_deref(),
        Some("1980-01-01T00:00:01Z")
    );
    // Deterministic: rebuilding gives the same digest.
    let again = cnb_acceptance::images::build_busybox(&t.path().join("again"), &Default::default());
    assert_eq!(again.manifest_digest, img.manifest_digest);
}

#[test]
fn shared_blobs_are_written_once_tags_move_and_gc_collects() {
    let t = tempfile::tempdir().unwrap();
    let base = busybox_copy(&t.path().join("layout"));
    let layout = Layout::open(&base.layout).unwrap();
    let base_img = Image::from_layout(&base.layout, &Selector::Tag("latest".into()), None).unwrap();
    let info = layer_from(&t.path().join("src1"), &[("a", "one")], &layout);
    let mut b1 = ImageBuilder::from_base(&base_img).unwrap();
    b1.add_layer(
        &info,
        Some("Layer: 'layer', Created by buildpack: bp@1".into()),
    )
    .unwrap();
    b1.set_label("io.buildpacks.lifecycle.metadata", "{}");
    b1.set_created(315_532_801);
    let r1 = b1.save_to_layout(&layout, &["app:v1".to_string()]).unwrap();
    // The layer was produced straight into the blob dir and the base layer exists: only config + manifest.
    assert_eq!(r1.stats.blobs_written, 2, "{:?}", r1.stats);
    assert_eq!(r1.stats.blobs_reused, 2);
    // A second image reusing the first image's layer by diffID copies no layer bytes.
    let img1 = Image::from_layout(&base.layout, &Selector::Tag("app:v1".into()), None).unwrap();
    let mut b2 = ImageBuilder::from_base(&base_img).unwrap();
    b2.reuse_layer(&img1, &info.diff_id, None).unwrap();
    b2.set_env("EXTRA", "1");
    let r2 = b2.save_to_layout(&layout, &["app:v2".to_string()]).unwrap();
    assert_eq!(r2.stats.blobs_written, 2);
    assert_eq!(
        r2.stats.bytes_written,
        (r2.config_bytes.len() + r2.manifest_bytes.len()) as u64
    );
    // Saving the identical image again writes nothing.
    let r2b = b2.save_to_layout(&layout, &["app:v2".to_string()]).unwrap();
    assert_eq!(r2b.stats.bytes_written, 0);
    assert_eq!(r2b.manifest_digest, r2.manifest_digest);
    check_with_tools(&base.layout, "app:v1", t.path());
    let root2 = check_with_tools(&base.layout, "app:v2", t.path());
    assert_eq!(
        fs::read_to_string(root2.join("layers/bp/layer/a")).unwrap(),
        "one"
    );
    // Move tag v1 onto v2's manifest: the old v1 manifest and config become garbage.
    let desc = Descriptor::new(
        oci::OCI_MANIFEST,
        r2.manifest_digest.clone(),
        r2.manifest_size,
    );
    layout.add_manifest(&desc, &["app:v1".to_string()]).unwrap();
    let moved = Image::from_layout(&base.layout, &Selector::Tag("app:v1".into()), None).unwrap();
    assert_eq!(moved.manifest_digest(), &r2.manifest_digest);
    let tags = layout.tags().unwrap();
    assert_eq!(
        tags.iter().filter(|t| *t == "app:v1").count(),
        1,
        "{tags:?}"
    );
    let gc = layout.gc().unwrap();
    assert_eq!(gc.blobs_removed, 2, "old manifest + config");
    assert!(!layout.has_blob(&r1.manifest_digest));
    assert!(layout.has_blob(&info.digest), "shared layer stays");
    check_with_tools(&base.layout, "app:v1", t.path());
    assert!(layout.untag("app:v2").unwrap());
    assert!(layout.untag("app:v1").unwrap());
    assert!(layout.untag("latest").unwrap());
    let gc = layout.gc().unwrap();
    assert!(gc.blobs_removed >= 3);
    assert_eq!(fs::read_dir(layout.blob_dir()).unwrap().count(), 0);
}

#[test]
fn untagged_docker_typed_layout_is_read() {
    // The shape skopeo and the reference's fixtures produce: Docker v2 media types, no tag, no index mediaType.
    let t = tempfile::tempdir().unwrap();
    let src = busybox();
    let l = Layout::create(t.path().join("docker")).unwrap();
    let img = Image::from_layout(&src.layout, &Selector::Only, None).unwrap();
    let mut config_bytes = img.config_bytes().to_vec();
    config_bytes.push(b'\n');
    let (config_digest, _) = l.write_blob(&config_bytes).unwrap();
    let layer = &img.manifest().layers[0];
    l.write_blob_from(img.open_blob(&layer.digest).unwrap(), Some(&layer.digest))
        .unwrap();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","size":{},"digest":"{}"}},"layers":[{{"mediaType":"{}","size":{},"digest":"{}"}}]}}"#,
        oci::DOCKER_MANIFEST,
        oci::DOCKER_CONFIG,
        config_bytes.len(),
        config_digest,
        oci::DOCKER_LAYER,
        layer.size,
        layer.digest
    );
    let (md, _) = l.write_blob(manifest.as_bytes()).unwrap();
    fs::write(
        l.path().join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"{md}","size":{}}}]}}"#,
            oci::DOCKER_MANIFEST,
            manifest.len()
        ),
    )
    .unwrap();
    // skopeo accepts it as well (the fixture is sound).
    run(
        "skopeo",
        &["inspect", "--raw", &format!("oci:{}", l.path().display())],
    );
    let read = Image::from_layout(l.path(), &Selector::Only, None).unwrap();
    assert_eq!(read.manifest_media_type(), oci::DOCKER_MANIFEST);
    assert_eq!(read.manifest_digest(), &md);
    assert_eq!(read.env_var("CNB_USER_ID").as_deref(), Some("1000"));
    assert_eq!(
        read.layers().unwrap()[0].descriptor.media_type,
        oci::DOCKER_LAYER
    );
    // A new image on a Docker base keeps Docker media types (IM-01), and new gzip layers get the Docker type.
    let out = Layout::create(t.path().join("out")).unwrap();
    let info = layer_from(&t.path().join("src"), &[("x", "y")], &out);
    let mut b = ImageBuilder::from_base(&read).unwrap();
    b.add_layer(&info, None).unwrap();
    let r = b.save_to_layout(&out, &["latest".into()]).unwrap();
    assert_eq!(r.manifest_media_type, oci::DOCKER_MANIFEST);
    let m: oci::Manifest = serde_json::from_slice(&r.manifest_bytes).unwrap();
    assert_eq!(m.config.media_type, oci::DOCKER_CONFIG);
    assert!(m.layers.iter().all(|l| l.media_type == oci::DOCKER_LAYER));
    // skopeo resolves tags only on OCI-typed index entries; the single image is found untagged.
    run(
        "skopeo",
        &[
            "copy",
            "-q",
            &format!("oci:{}", out.path().display()),
            &format!("oci:{}:latest", t.path().join("c").display()),
        ],
    );
}

#[test]
fn platform_is_selected_from_a_multi_platform_index() {
    let t = tempfile::tempdir().unwrap();
    let base = busybox_copy(&t.path().join("l"));
    let layout = Layout::open(&base.layout).unwrap();
    let amd = Image::from_layout(&base.layout, &Selector::Only, None).unwrap();
    let mut other = ImageBuilder::from_base(&amd).unwrap();
    other.config_mut().architecture = "arm64".into();
    other.config_mut().variant = Some("v8".into());
    let arm = other.save_to_layout(&layout, &[]).unwrap();
    let plat = |arch: &str, variant: Option<&str>| Platform {
        architecture: arch.into(),
        os: "linux".into(),
        variant: variant.map(str::to_string),
        ..Platform::default()
    };
    let mut idx = Index::default();
    let mut d1 = Descriptor::new(
        oci::OCI_MANIFEST,
        amd.manifest_digest().clone(),
        amd.manifest_bytes().len() as u64,
    );
    d1.platform = Some(plat("amd64", None));
    let mut d2 = Descriptor::new(
        oci::OCI_MANIFEST,
        arm.manifest_digest.clone(),
        arm.manifest_size,
    );
    d2.platform = Some(plat("arm64", Some("v8")));
    idx.manifests = vec![d1, d2];
    let idx_bytes = serde_json::to_vec(&idx).unwrap();
    let (idx_digest, _) = layout.write_blob(&idx_bytes).unwrap();
    let mut top = Index::default();
    let mut d = Descriptor::new(oci::OCI_INDEX, idx_digest, idx_bytes.len() as u64);
    d.annotations = Some([(oci::REF_NAME.to_string(), "multi".to_string())].into());
    top.manifests = vec![d];
    layout.write_index(&top).unwrap();
    let sel = Selector::Tag("multi".into());
    let a = Image::from_layout(&base.layout, &sel, Some(&plat("amd64", None))).unwrap();
    assert_eq!(a.manifest_digest(), amd.manifest_digest());
    let b = Image::from_layout(&base.layout, &sel, Some(&plat("arm64", None))).unwrap();
    assert_eq!(b.manifest_digest(), &arm.manifest_digest);
    assert_eq!(b.config().architecture, "arm64");
    let e = Image::from_layout(&base.layout, &sel, Some(&plat("s390x", None)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("s390x") && e.contains("amd64"), "{e}");
    oci_image_tool_validate(&base.layout, "multi", t.path());
}

#[test]
fn reference_paths_and_missing_images() {
    let t = tempfile::tempdir().unwrap();
    let p = path_for_reference(t.path(), "busybox").unwrap();
    assert_eq!(p, t.path().join("index.docker.io/library/busybox/latest"));
    assert!(Image::from_layout_dir(t.path(), "busybox")
        .unwrap()
        .is_none());
    let img = Image::from_layout(&busybox().layout, &Selector::Only, None).unwrap();
    let dest = Layout::create(&p).unwrap();
    let mut b = ImageBuilder::from_base(&img).unwrap();
    b.set_label("k", "v");
    let r = b.save_to_layout(&dest, &["latest".into()]).unwrap();
    let read = Image::from_layout_dir(t.path(), "index.docker.io/library/busybox:latest")
        .unwrap()
        .unwrap();
    assert_eq!(read.manifest_digest(), &r.manifest_digest);
    assert_eq!(
        read.identifier(),
        format!("{}@{}", p.display(), r.manifest_digest)
    );
    // Errors name the layout and what is available.
    let e = Image::from_layout(&p, &Selector::Tag("nope".into()), None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("nope") && e.contains("latest") && e.contains(&p.display().to_string()),
        "{e}"
    );
    let e = Image::from_layout(t.path(), &Selector::Only, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not an OCI image layout"), "{e}");
    // A corrupt blob is detected with both digests named.
    let cfg = dest.blob_path(&r.image_id);
    fs::write(&cfg, b"{}").unwrap();
    let e = Image::from_layout(&p, &Selector::Only, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("corrupt") && e.contains(r.image_id.as_str()),
        "{e}"
    );
}

#[test]
fn layers_stream_by_diff_id_and_extract() {
    let img = Image::from_layout(&busybox().layout, &Selector::Only, None).unwrap();
    let top = img.top_layer().unwrap().clone();
    let t = tempfile::tempdir().unwrap();
    let stats = cnb_lifecycle::archive::extract(
        img.open_layer(&top).unwrap(),
        t.path(),
        &Default::default(),
    )
    .unwrap();
    assert!(stats.entries > 200);
    assert!(t.path().join("bin/busybox").is_file());
    let missing: Digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
        .parse()
        .unwrap();
    assert!(img
        .open_layer(&missing)
        .err()
        .unwrap()
        .to_string()
        .contains("not found"));
    // The builder API also reads single entries back.
    let mut lb = LayerBuilder::new();
    lb.add(Source::Bytes {
        path: "/x".into(),
        data: b"1".to_vec(),
        meta: Meta::root(0o644),
    });
    assert_eq!(
        lb.write(Compression::None, Sink::HashOnly)
            .unwrap()
            .tar_size,
        2048
    );
}

/// A killed writer never leaves a broken `index.json`: the child process below rewrites the index in a
/// loop; we SIGKILL it at varying moments and check the index every time.
#[test]
fn killed_writer_leaves_previous_index_valid() {
    if let Ok(dir) = std::env::var("CNB_LAYOUT_KILL_CHILD") {
        let layout = Layout::open(&dir).unwrap();
        let img =
            Image::from_layout(Path::new(&dir), &Selector::Tag("latest".into()), None).unwrap();
        let desc = Descriptor::new(
            oci::OCI_MANIFEST,
            img.manifest_digest().clone(),
            img.manifest_bytes().len() as u64,
        );
        for i in 0.. {
            let tags: Vec<String> = (0..(i % 50)).map(|j| format!("tag-{i}-{j}")).collect();
            layout.add_manifest(&desc, &tags).unwrap();
            let mut b = ImageBuilder::from_base(&img).unwrap();
            b.set_label("i", &i.to_string());
            b.save_to_layout(&layout, &[format!("img-{}", i % 7)])
                .unwrap();
        }
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let base = busybox_copy(&t.path().join("l"));
    let exe = std::env::current_exe().unwrap();
    for round in 0..12u64 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "layout::killed_writer_leaves_previous_index_valid",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("CNB_LAYOUT_KILL_CHILD", &base.layout)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(60 + round * 37 % 200));
        child.kill().unwrap();
        child.wait().unwrap();
        let bytes = fs::read(base.layout.join("index.json")).unwrap();
        let idx: Index = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("round {round}: broken index.json: {e}"));
        assert!(idx.manifests.iter().any(|d| d.ref_name() == Some("latest")));
        // Every manifest listed is complete.
        let layout = Layout::open(&base.layout).unwrap();
        for d in &idx.manifests {
            assert!(
                layout.has_blob(&d.digest),
                "round {round}: {} listed but absent",
                d.digest
            );
        }
    }
    let layout = Layout::open(&base.layout).unwrap();
    // The child really wrote (its tags are there), so the kills landed during writes.
    assert!(
        layout.tags().unwrap().iter().any(|t| t.starts_with("img-")),
        "child never wrote"
    );
    layout.gc().unwrap();
    oci_image_tool_validate(&base.layout, "latest", t.path());
}

#[test]
fn registry_round_trip_keeps_digests_reuses_and_mounts() {
    use cnb_acceptance::registry::{Registry, RegistryOptions as HarnessOptions};
    use cnb_lifecycle::image::registry::{ImageRef, Keychain, RegistryClient, RegistryOptions};
    let reg = Registry::start(HarnessOptions::plain().access_log());
    let client = RegistryClient::new(
        Arc::new(Keychain::anonymous()),
        RegistryOptions::from_env().insecure(&reg.host()),
    )
    .unwrap();
    let base = Image::from_layout(&busybox().layout, &Selector::Only, None).unwrap();
    // layout → registry
    let r1 = ImageRef::parse(&reg.image("base/busybox:latest")).unwrap();
    let pushed = ImageBuilder::from_base(&base)
        .unwrap()
        .save_to_registry(&client, &r1, &[])
        .unwrap();
    assert_eq!(
        &pushed.manifest_digest,
        base.manifest_digest(),
        "unchanged image keeps its digest"
    );
    assert_eq!(pushed.stats.blobs_written, 2, "layer + config uploaded");
    // registry → layout keeps digests; skopeo agrees on the digest.
    let from_reg = Image::from_registry(&client, &r1).unwrap();
    assert_eq!(from_reg.manifest_digest(), base.manifest_digest());
    let t = tempfile::tempdir().unwrap();
    let out = Layout::create(t.path().join("out")).unwrap();
    let back = ImageBuilder::from_base(&from_reg)
        .unwrap()
        .save_to_layout(&out, &["latest".into()])
        .unwrap();
    assert_eq!(&back.manifest_digest, base.manifest_digest());
    check_with_tools(out.path(), "latest", t.path());
    // Pushing again uploads nothing (HEAD says the blobs exist).
    let again = ImageBuilder::from_base(&from_reg)
        .unwrap()
        .save_to_registry(&client, &r1, &["v2".into()])
        .unwrap();
    assert_eq!(again.stats.blobs_written, 0);
    assert_eq!(again.stats.blobs_reused, 2);
    // An app image on the registry base, pushed to another repository: base layer mounted, new layer uploaded.
    let info = layer_from(&t.path().join("src"), &[("app", "x")], &out);
    let mut app = ImageBuilder::from_base(&from_reg).unwrap();
    app.add_layer(&info, Some("Application Layer".into()))
        .unwrap();
    let r2 = ImageRef::parse(&reg.image("apps/app:latest")).unwrap();
    let saved = app.save_to_registry(&client, &r2, &[]).unwrap();
    assert_eq!(saved.stats.blobs_mounted, 1, "{saved:?}");
    assert_eq!(saved.stats.blobs_written, 2, "new layer + config");
    let raw = reg.skopeo_inspect_raw("apps/app:latest");
    assert_eq!(Digest::sha256_of(&raw), saved.manifest_digest);
    let log = reg.access_log();
    assert!(log.iter().any(|l| l.contains("mount=")), "{log:?}");
}

//! `make bench-export` (issue 5 "Performance"): an app with ~1 GiB across three buildpack layers and
//! the app dir; fresh export and no-op re-export to an OCI layout and to a loopback registry.
//! Prints seconds, MB/s, bytes written/uploaded on the no-op run (target: 0) and the ratio to a
//! baseline measured in the same run: building the same layers with the layer builder alone
//! (tar + sha256 + gzip + sha256 to a file), i.e. the `layer` limit.
//!
//! `BENCH_EXPORT_MB` sets the total size (default 1024); `BENCH_EXPORT_THREADS` the threads producing
//! layers (default: every core; 1 = serial).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cnb_lifecycle::archive::MEDIA_TYPE_TAR_GZIP as OCI_LAYER_GZIP;
use cnb_lifecycle::export::config::{ConfigInputs, NORMALIZED_CREATED};
use cnb_lifecycle::export::exporter::{ExportRequest, Exporter};
use cnb_lifecycle::export::layers::build_gzip;
use cnb_lifecycle::export::layers::Owner;
use cnb_lifecycle::export::metadata::{metadata_from_label, LIFECYCLE_METADATA_LABEL};
use cnb_lifecycle::export::plan::{plan_layers, GroupBuildpack, LayerContent, PlanInputs};
use cnb_lifecycle::export::slices::slice_app;
use cnb_lifecycle::image::layout::{IndexUpdate, Layout, LayoutStore, LayoutWriter};
use cnb_lifecycle::image::oci::Platform;
use cnb_lifecycle::image::registry::RegistryStore;
use cnb_lifecycle::image::registry::{Keychain, RegistryClient, RegistryOptions};
use cnb_lifecycle::image::{Image, ImageBuilder, ImageStore, ImageWriter};
use cnb_spec::PlatformApi;

const OWNER: Owner = Owner {
    uid: 1000,
    gid: 1000,
};

/// Fills `dir` with `mb` MiB in 4 MiB files: half pseudo-random (incompressible), half text.
fn fill(dir: &Path, mb: usize, seed: u64) {
    fs::create_dir_all(dir).unwrap();
    let mut x = seed | 1;
    let mut buf = vec![0u8; 4 << 20];
    for i in 0..mb.div_ceil(4) {
        if i % 2 == 0 {
            for chunk in buf.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
            }
        } else {
            for (j, b) in buf.iter_mut().enumerate() {
                *b = b"lorem ipsum dolor sit amet\n"[j % 27];
            }
        }
        let mut f = fs::File::create(dir.join(format!("f{i:04}.bin"))).unwrap();
        f.write_all(&buf).unwrap();
    }
}

fn layout_writer(dir: &Path) -> LayoutWriter {
    LayoutWriter::new(
        Layout::create(dir).unwrap(),
        IndexUpdate::Replace("latest".into()),
    )
}

fn base_image(dir: &Path, scratch: &Path) -> Image {
    let dest = layout_writer(dir);
    let src = scratch.join("base/etc");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("os-release"), "ID=bench\n").unwrap();
    let tmp = dest.scratch_dir().join(".b");
    let built = build_gzip(
        &LayerContent::Dir(src),
        Owner { uid: 0, gid: 0 },
        &tmp,
        None,
    )
    .unwrap();
    let mut b = ImageBuilder::empty(&Platform::current());
    b.add_layer_file(
        tmp,
        built.diff_id.parse().unwrap(),
        built.digest.parse().unwrap(),
        built.size,
        OCI_LAYER_GZIP,
        None,
    );
    b.set_env("PATH", "/bin");
    b.save(&dest).unwrap();
    LayoutStore::open_path(dir).unwrap().unwrap()
}

struct Fixture {
    layers: PathBuf,
    app: PathBuf,
    launcher: PathBuf,
    group: Vec<GroupBuildpack>,
}

/// Layer threads: `BENCH_EXPORT_THREADS` (default: every core).
fn threads() -> usize {
    std::env::var("BENCH_EXPORT_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn export_once(f: &Fixture, base: &Image, previous: Option<&Image>, dest: &dyn ImageWriter) -> f64 {
    let prev_meta = metadata_from_label(previous.and_then(|p| p.label(LIFECYCLE_METADATA_LABEL)));
    let slices = slice_app(&f.app, &[]).unwrap();
    let types = vec!["web".to_string()];
    let plan = plan_layers(&PlanInputs {
        layers_dir: &f.layers,
        app_dir: &f.app,
        group: &f.group,
        previous: &prev_meta,
        app_slices: &slices,
        launcher: &f.launcher,
        process_types: &types,
        sbom: true,
    })
    .unwrap();
    let start = Instant::now();
    Exporter::new(dest)
        .threads(threads())
        .export(ExportRequest {
            plan,
            group: &f.group,
            stores: BTreeMap::new(),
            owner: OWNER,
            base,
            base_config: base.config().clone(),
            previous,
            keep_tars: vec![],
            config: ConfigInputs {
                layers_dir: f.layers.display().to_string(),
                app_dir: f.app.display().to_string(),
                platform_api: PlatformApi::new(0, 13),
                created: NORMALIZED_CREATED.into(),
                entrypoint: "/cnb/process/web".into(),
                labels: vec![],
                layers: vec![],
            },
            run_image_name: "bench/run".into(),
            run_image_mirrors: vec![],
            extension: vec![],
        })
        .unwrap();
    start.elapsed().as_secs_f64()
}

fn main() {
    let total_mb: usize = std::env::var("BENCH_EXPORT_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let tmp = tempfile::Builder::new()
        .prefix("bench-export-")
        .tempdir()
        .unwrap();
    let root = tmp.path();
    let layers = root.join("layers");
    let app = root.join("workspace");
    let quarter = total_mb / 4;
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        let bp = layers.join(format!("bp_{name}"));
        fill(&bp.join("main"), quarter, 7 + i as u64);
        fs::write(bp.join("main.toml"), "[types]\nlaunch = true\n").unwrap();
    }
    fill(&app, total_mb - 3 * quarter, 99);
    fs::create_dir_all(layers.join("config")).unwrap();
    fs::write(
        layers.join("config/metadata.toml"),
        "[[processes]]\ntype = \"web\"\ncommand = [\"x\"]\n",
    )
    .unwrap();
    let launcher = root.join("launcher");
    fs::write(&launcher, vec![0u8; 1 << 20]).unwrap();
    let group = ["a", "b", "c"]
        .iter()
        .map(|n| GroupBuildpack {
            id: format!("bp/{n}"),
            version: "1".into(),
        })
        .collect();
    let f = Fixture {
        layers: layers.clone(),
        app: app.clone(),
        launcher,
        group,
    };
    let mb = total_mb as f64;
    println!("export benchmark: {total_mb} MiB in 3 buildpack layers + app");

    // Baseline: the layer builder alone on the same four directories.
    let start = Instant::now();
    for d in ["bp_a/main", "bp_b/main", "bp_c/main"]
        .iter()
        .map(|d| layers.join(d))
        .chain([app.clone()])
    {
        let out = root.join("baseline.blob");
        build_gzip(&LayerContent::Dir(d), OWNER, &out, None).unwrap();
        fs::remove_file(out).unwrap();
    }
    let baseline = start.elapsed().as_secs_f64();
    println!(
        "  baseline (layer build, tar+gzip+sha256 ×2): {baseline:.2}s, {:.0} MB/s",
        mb / baseline
    );

    // Layout.
    let base = base_image(&root.join("run"), root);
    let out_dir = root.join("out");
    let dest = layout_writer(&out_dir);
    let fresh = export_once(&f, &base, None, &dest);
    let fresh_bytes = dest.stats().bytes_written;
    let prev = LayoutStore::open_path(&out_dir).unwrap().unwrap();
    let dest2 = layout_writer(&out_dir);
    let noop = export_once(&f, &base, Some(&prev), &dest2);
    let (n, bytes) = (dest2.stats().blobs_written, dest2.stats().bytes_written);
    println!(
        "  layout   fresh: {fresh:.2}s {:.0} MB/s ({:.2}× baseline), wrote {} MB | no-op: {noop:.2}s, {:.0} MB/s, {n} layer blobs / {bytes} bytes written",
        mb / fresh,
        fresh / baseline,
        fresh_bytes >> 20,
        mb / noop
    );

    // Loopback registry.
    let reg = cnb_acceptance::registry::Registry::start(
        cnb_acceptance::registry::RegistryOptions::plain(),
    );
    let client = RegistryClient::new(
        std::sync::Arc::new(Keychain::anonymous()),
        RegistryOptions::default().insecure(&reg.host()),
    )
    .unwrap();
    let image = format!("{}/bench/app:latest", reg.host());
    let store = RegistryStore::new(client.clone());
    let dest = store.writer(&image).unwrap();
    let fresh = export_once(&f, &base, None, dest.as_ref());
    let up = dest.stats().bytes_written;
    let prev = store.open(&image).unwrap().unwrap();
    let dest2 = store.writer(&image).unwrap();
    let noop = export_once(&f, &base, Some(&prev), dest2.as_ref());
    let (n, bytes) = (dest2.stats().blobs_written, dest2.stats().bytes_written);
    println!(
        "  registry fresh: {fresh:.2}s {:.0} MB/s ({:.2}× baseline), uploaded {} MB | no-op: {noop:.2}s, {:.0} MB/s, {n} layer blobs / {bytes} bytes uploaded",
        mb / fresh,
        fresh / baseline,
        up >> 20,
        mb / noop
    );
}

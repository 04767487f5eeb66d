//! Byte guards for the exporter's image documents (checklist IM-01…IM-04): the config and manifest
//! bytes decide the image digest, so a fixed base and fixed inputs must give exactly these bytes.

#![allow(clippy::unwrap_used)]

use super::config::{build_config, ConfigInputs, NORMALIZED_CREATED};
use crate::image::oci::{Descriptor, Platform};
use crate::image::{ImageBuilder, LayerRef};
use cnb_spec::PlatformApi;

/// A Docker-built run image config: unknown top-level, runtime and history fields, an empty-layer
/// history entry, exposed ports and volumes.
pub(crate) const BASE_CONFIG: &str = r#"{"architecture":"amd64","os":"linux","container":"abc","docker_version":"20.10","created":"2020-01-01T00:00:00Z","config":{"Hostname":"h","User":"1000:1000","ExposedPorts":{"8080/tcp":{}},"Env":["PATH=/usr/bin:/bin","CNB_USER_ID=1000"],"Cmd":["sh"],"Volumes":{"/data":{}},"WorkingDir":"/","Labels":{"io.buildpacks.base.id":"t","z":"last"},"ArgsEscaped":true,"OnBuild":null},"rootfs":{"type":"layers","diff_ids":["sha256:1111111111111111111111111111111111111111111111111111111111111111"]},"history":[{"created":"2020-01-01T00:00:00Z","created_by":"ADD rootfs","comment":"c","x-extra":1},{"created_by":"ENV A=1","empty_layer":true}]}"#;

pub(crate) fn inputs() -> ConfigInputs {
    ConfigInputs {
        layers_dir: "/layers".into(),
        app_dir: "/workspace".into(),
        platform_api: PlatformApi::new(0, 13),
        created: NORMALIZED_CREATED.into(),
        entrypoint: "/cnb/process/web".into(),
        labels: vec![
            ("io.buildpacks.lifecycle.metadata".into(), "{}".into()),
            ("b".into(), "2".into()),
        ],
        layers: vec![(
            "sha256:2222222222222222222222222222222222222222222222222222222222222222".into(),
            "Layer: 'web', Created by buildpack: bp@1".into(),
        )],
    }
}

pub(crate) const EXPECTED_CONFIG: &str = r#"{"architecture":"amd64","config":{"Entrypoint":["/cnb/process/web"],"Env":["PATH=/cnb/process:/cnb/lifecycle:/usr/bin:/bin","CNB_USER_ID=1000","CNB_LAYERS_DIR=/layers","CNB_APP_DIR=/workspace","CNB_PLATFORM_API=0.13","CNB_DEPRECATION_MODE=quiet"],"ExposedPorts":{"8080/tcp":{}},"Labels":{"b":"2","io.buildpacks.base.id":"t","io.buildpacks.lifecycle.metadata":"{}","z":"last"},"User":"1000:1000","Volumes":{"/data":{}},"WorkingDir":"/workspace"},"created":"1980-01-01T00:00:01Z","history":[{"comment":"c","created":"1980-01-01T00:00:01Z","created_by":"ADD rootfs"},{"created":"1980-01-01T00:00:01Z","created_by":"Layer: 'web', Created by buildpack: bp@1"}],"os":"linux","rootfs":{"diff_ids":["sha256:1111111111111111111111111111111111111111111111111111111111111111","sha256:2222222222222222222222222222222222222222222222222222222222222222"],"type":"layers"}}"#;
pub(crate) const EXPECTED_MANIFEST: &str = r#"{"config":{"digest":"sha256:656469a85691279980e74615d90bef78aef2b0ef708bef8b0e36c72456866318","mediaType":"application/vnd.oci.image.config.v1+json","size":857},"layers":[{"digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":10},{"digest":"sha256:4444444444444444444444444444444444444444444444444444444444444444","mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":20}],"mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2}"#;

#[test]
fn exporter_config_and_manifest_bytes_are_stable() {
    let base = serde_json::from_str(BASE_CONFIG).unwrap();
    let layer = |diff: char, blob: char, size, media_type: &str| LayerRef {
        diff_id: format!("sha256:{}", diff.to_string().repeat(64))
            .parse()
            .unwrap(),
        descriptor: Descriptor::new(
            media_type,
            format!("sha256:{}", blob.to_string().repeat(64))
                .parse()
                .unwrap(),
            size,
        ),
    };
    // As the exporter builds it: the normalised base, its layer, the new layer, the config.
    let mut image = ImageBuilder::empty(&Platform::current()).normalize();
    image.add_stored_layer(
        layer(
            '1',
            '3',
            10,
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        ),
        None,
    );
    image.add_stored_layer(
        layer('2', '4', 20, "application/vnd.oci.image.layer.v1.tar+gzip"),
        None,
    );
    image.set_config(build_config(&base, &inputs()));
    let (cfg, manifest) = image.render().unwrap();
    assert_eq!(String::from_utf8(cfg).unwrap(), EXPECTED_CONFIG);
    assert_eq!(String::from_utf8(manifest).unwrap(), EXPECTED_MANIFEST);
}

#[test]
fn cache_image_bytes_are_stable() {
    use crate::cache::{image::ImageCache, Cache, CacheMetadata};
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("cache");
    let dest = crate::image::layout::LayoutWriter::new(
        crate::image::layout::Layout::create(&dir).unwrap(),
        crate::image::layout::IndexUpdate::Replace("latest".into()),
    );
    let mut cache = ImageCache::new("cache", None, Box::new(dest));
    let tar = t.path().join("layer.tar");
    std::fs::write(&tar, [0u8; 2048]).unwrap();
    let diff_id = crate::cache::sha256_file(&tar).unwrap();
    cache.add_layer_file(&tar, &diff_id).unwrap();
    cache.set_metadata(&CacheMetadata::default()).unwrap();
    cache.commit().unwrap();
    let index = std::fs::read_to_string(dir.join("index.json")).unwrap();
    assert_eq!(index, EXPECTED_CACHE_INDEX);
}

const EXPECTED_CACHE_INDEX: &str = r#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:936b68f5b14461a20f13b5c0ca4d74209bd46cb6b9f1089a120ac6a1117f8956","size":400,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}"#;

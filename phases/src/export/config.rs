//! The app image's config (checklist EP-12…EP-14, IM-01…IM-04, T-03): env, entrypoint, working dir,
//! labels, history and `created`, derived from the run image's config.

use crate::image::oci::{History, ImageConfig, RuntimeConfig};
use crate::image::Digest;

use cnb_spec::PlatformApi;

/// The reference's constant creation time (T-03), Unix 315532801.
pub const NORMALIZED_CREATED: &str = "1980-01-01T00:00:01Z";

/// Path of the launcher inside the image.
pub const LAUNCHER_IMAGE_PATH: &str = "/cnb/lifecycle/launcher";

/// Config-building errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `-process-type` names a type no buildpack declared (EP-14).
    #[error("tried to set {0} to default but it doesn't exist")]
    UnknownProcessType(String),
}

/// `created` for config and history (IM-03): `SOURCE_DATE_EPOCH` (`[P≥0.9]`, integer seconds) or
/// the constant. An invalid value is reported as `Err(value)` so the caller can warn
/// (`Ignoring invalid SOURCE_DATE_EPOCH`) and use the constant.
pub fn created_time(source_date_epoch: Option<&str>) -> Result<String, String> {
    match source_date_epoch.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(NORMALIZED_CREATED.to_string()),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|s| *s >= 0)
            .map(rfc3339_utc)
            .ok_or_else(|| v.to_string()),
    }
}

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339_utc(secs: i64) -> String {
    crate::image::oci::rfc3339(secs)
}

/// The entrypoint (EP-14): `-process-type` (must exist), else the buildpack default, else the launcher.
pub fn entrypoint(
    process_type_flag: Option<&str>,
    buildpack_default: Option<&str>,
    process_types: &[String],
) -> Result<String, ConfigError> {
    if let Some(t) = process_type_flag.filter(|t| !t.is_empty()) {
        if !process_types.iter().any(|p| p == t) {
            return Err(ConfigError::UnknownProcessType(t.to_string()));
        }
        return Ok(format!("/cnb/process/{t}"));
    }
    match buildpack_default.filter(|t| process_types.iter().any(|p| p == t)) {
        Some(t) => Ok(format!("/cnb/process/{t}")),
        None => Ok(LAUNCHER_IMAGE_PATH.to_string()),
    }
}

/// What the exporter sets on top of the base config.
#[derive(Debug, Clone)]
pub struct ConfigInputs {
    /// `<layers>` (`CNB_LAYERS_DIR`).
    pub layers_dir: String,
    /// `<app>` (`CNB_APP_DIR`, working dir).
    pub app_dir: String,
    /// Platform API (`CNB_PLATFORM_API`; history gate).
    pub platform_api: PlatformApi,
    /// `created` (see [`created_time`]).
    pub created: String,
    /// Entrypoint (see [`entrypoint`]).
    pub entrypoint: String,
    /// Labels to add (later wins).
    pub labels: Vec<(String, String)>,
    /// The new layers: diffID and history `created_by`, in order (the diffIDs of the result are set
    /// from the image's layers when it is saved).
    pub layers: Vec<(String, String)>,
}

fn set_env(env: &mut Vec<String>, key: &str, value: String) {
    let entry = format!("{key}={value}");
    match env.iter_mut().find(|e| e.split('=').next() == Some(key)) {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

/// Builds the app image config from the base (run image) config (EP-12…EP-14, IM-02, IM-03).
pub fn build_config(base: &ImageConfig, inp: &ConfigInputs) -> ImageConfig {
    let mut cfg = base.clone();
    let mut c: RuntimeConfig = cfg.config.clone().unwrap_or_default();

    let mut env = c.env.clone().unwrap_or_default();
    let base_path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .map(String::from);
    set_env(&mut env, "CNB_LAYERS_DIR", inp.layers_dir.clone());
    set_env(&mut env, "CNB_APP_DIR", inp.app_dir.clone());
    set_env(&mut env, "CNB_PLATFORM_API", inp.platform_api.to_string());
    set_env(&mut env, "CNB_DEPRECATION_MODE", "quiet".to_string());
    let path = match base_path {
        Some(p) if !p.is_empty() => format!("/cnb/process:/cnb/lifecycle:{p}"),
        _ => "/cnb/process:/cnb/lifecycle".to_string(),
    };
    set_env(&mut env, "PATH", path);
    c.env = Some(env);
    c.working_dir = Some(inp.app_dir.clone());
    c.entrypoint = Some(vec![inp.entrypoint.clone()]);
    c.cmd = None;
    let mut labels = c.labels.clone().unwrap_or_default();
    for (k, v) in &inp.labels {
        labels.insert(k.clone(), v.clone());
    }
    c.labels = Some(labels);
    cfg.config = Some(c);

    // History: one entry per base layer (empty-layer entries dropped; blank if counts differ), then
    // one per new layer (IM-02). Before Platform 0.12 every entry is blank but for `created`.
    let keep_history = inp.platform_api.at_least(0, 12);
    let base_layers = cfg.rootfs.diff_ids.len();
    let base_hist: Vec<History> = cfg
        .history
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|h| h.empty_layer != Some(true))
        .collect();
    let base_hist_ok = keep_history && base_hist.len() == base_layers;
    let mut history = Vec::with_capacity(base_layers + inp.layers.len());
    for i in 0..base_layers {
        let mut h = if base_hist_ok {
            base_hist.get(i).cloned().unwrap_or_default()
        } else {
            History::default()
        };
        h.created = Some(inp.created.clone());
        h.empty_layer = None;
        history.push(h);
    }
    for (diff_id, created_by) in &inp.layers {
        let mut h = History {
            created: Some(inp.created.clone()),
            ..History::default()
        };
        if keep_history {
            h.created_by = Some(created_by.clone());
        }
        history.push(h);
        if let Ok(d) = diff_id.parse::<Digest>() {
            cfg.rootfs.diff_ids.push(d);
        }
    }
    cfg.history = Some(history);
    cfg.created = Some(inp.created.clone());
    cfg
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const N: &str = "sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";

    fn base() -> ImageConfig {
        serde_json::from_value(serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {
                "Env": ["PATH=/usr/bin:/bin", "CNB_APP_DIR=/old"],
                "User": "1000:1000",
                "Labels": {"io.buildpacks.base.id": "x"},
                "Cmd": ["sh"],
            },
            "rootfs": {"type": "layers", "diff_ids": [B]},
            "history": [{"created_by": "ADD base"}, {"created_by": "ENV x", "empty_layer": true}],
        }))
        .unwrap()
    }

    fn inputs(api: PlatformApi) -> ConfigInputs {
        ConfigInputs {
            layers_dir: "/layers".into(),
            app_dir: "/workspace".into(),
            platform_api: api,
            created: NORMALIZED_CREATED.into(),
            entrypoint: "/cnb/process/web".into(),
            labels: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
            layers: vec![(N.into(), "Application Layer".into())],
        }
    }

    #[test]
    fn ep13_ep14_env_entrypoint_workdir_labels() {
        let cfg = build_config(&base(), &inputs(PlatformApi::new(0, 13)));
        let c = cfg.config.as_ref().unwrap();
        let env = c.env.as_ref().unwrap();
        assert_eq!(env[0], "PATH=/cnb/process:/cnb/lifecycle:/usr/bin:/bin");
        assert_eq!(env[1], "CNB_APP_DIR=/workspace", "replaced in place");
        assert!(env.contains(&"CNB_PLATFORM_API=0.13".to_string()));
        assert!(env.contains(&"CNB_DEPRECATION_MODE=quiet".to_string()));
        assert_eq!(c.working_dir.as_deref(), Some("/workspace"));
        assert_eq!(
            c.entrypoint.as_ref().unwrap(),
            &vec!["/cnb/process/web".to_string()]
        );
        assert!(c.cmd.is_none());
        assert_eq!(c.user.as_deref(), Some("1000:1000"));
        let labels = c.labels.as_ref().unwrap();
        assert_eq!(labels["a"], "2");
        assert_eq!(labels["io.buildpacks.base.id"], "x");
        let ids: Vec<String> = cfg
            .rootfs
            .diff_ids
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(ids, vec![B.to_string(), N.to_string()]);
    }

    #[test]
    fn im02_im03_history_and_created() {
        let cfg = build_config(&base(), &inputs(PlatformApi::new(0, 12)));
        let h = cfg.history.as_ref().unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].created_by.as_deref(), Some("ADD base"));
        assert_eq!(h[1].created_by.as_deref(), Some("Application Layer"));
        assert!(h
            .iter()
            .all(|e| e.created.as_deref() == Some(NORMALIZED_CREATED)));
        assert_eq!(cfg.created.as_deref(), Some(NORMALIZED_CREATED));
        let old = build_config(&base(), &inputs(PlatformApi::new(0, 11)));
        assert!(old
            .history
            .as_ref()
            .unwrap()
            .iter()
            .all(|e| e.created_by.is_none()));
    }

    #[test]
    fn im03_source_date_epoch() {
        assert_eq!(created_time(None).unwrap(), NORMALIZED_CREATED);
        assert_eq!(created_time(Some("315532801")).unwrap(), NORMALIZED_CREATED);
        assert_eq!(
            created_time(Some("1700000000")).unwrap(),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(created_time(Some("0")).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(created_time(Some("abc")).unwrap_err(), "abc");
    }

    #[test]
    fn ep14_entrypoint_choice() {
        let types = vec!["web".to_string(), "worker".to_string()];
        assert_eq!(
            entrypoint(Some("worker"), Some("web"), &types).unwrap(),
            "/cnb/process/worker"
        );
        assert_eq!(
            entrypoint(None, Some("web"), &types).unwrap(),
            "/cnb/process/web"
        );
        assert_eq!(entrypoint(None, None, &types).unwrap(), LAUNCHER_IMAGE_PATH);
        assert_eq!(
            entrypoint(Some("nope"), None, &types)
                .unwrap_err()
                .to_string(),
            "tried to set nope to default but it doesn't exist"
        );
    }
}

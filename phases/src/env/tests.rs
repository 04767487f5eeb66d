//! Unit tests of the env rules (checklist §14, §15).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use std::fs;
use tempfile::TempDir;

const API: BuildpackApi = BuildpackApi::new(0, 12);

fn write(dir: &Path, name: &str, contents: &str) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(name), contents).unwrap();
}

fn env_of(pairs: &[(&str, &str)], ctx: Context) -> Env {
    Env::from_vars(ctx, pairs.iter().map(|(k, v)| (*k, *v)))
}

#[test]
fn envm01_suffixless_file_overrides_and_contents_are_verbatim() {
    let t = TempDir::new().unwrap();
    write(t.path(), "VAR", "  new value\n");
    let mut env = env_of(&[("VAR", "old")], Context::Build);
    env.add_env_dir(t.path(), default_action(API)).unwrap();
    assert_eq!(env.get_str("VAR"), "  new value\n");
}

#[test]
fn envm01_name_is_up_to_first_period_and_unknown_suffix_is_ignored() {
    let t = TempDir::new().unwrap();
    write(t.path(), "A.override", "a");
    write(t.path(), "B.bogus", "b");
    write(t.path(), "C.x.append", "c");
    write(t.path(), "D.delim", ",");
    let mut env = Env::new(Context::Launch);
    env.add_env_dir(t.path(), Action::Override).unwrap();
    assert_eq!(env.get_str("A"), "a");
    assert_eq!(env.get("B"), None);
    assert_eq!(env.get("C"), None);
    assert_eq!(env.get("D"), None, "a .delim file alone sets nothing");
    assert_eq!(env.vars().len(), 1);
}

#[test]
fn envm02_prepend_and_append_with_delim() {
    let t = TempDir::new().unwrap();
    write(t.path(), "P.prepend", "new");
    write(t.path(), "P.delim", "|");
    write(t.path(), "A.append", "new");
    write(t.path(), "A.delim", "**");
    let mut env = env_of(&[("P", "cur"), ("A", "cur")], Context::Build);
    env.add_env_dir(t.path(), Action::Override).unwrap();
    assert_eq!(env.get_str("P"), "new|cur");
    assert_eq!(env.get_str("A"), "cur**new");
}

#[test]
fn envm02_no_default_delimiter_and_no_delim_when_current_empty() {
    let t = TempDir::new().unwrap();
    write(t.path(), "P.prepend", "new");
    write(t.path(), "A.append", "new");
    write(t.path(), "E.append", "only");
    write(t.path(), "E.delim", ":");
    let mut env = env_of(&[("P", "cur"), ("A", "cur"), ("E", "")], Context::Build);
    env.add_env_dir(t.path(), Action::Override).unwrap();
    assert_eq!(env.get_str("P"), "newcur");
    assert_eq!(env.get_str("A"), "curnew");
    assert_eq!(env.get_str("E"), "only");
}

#[test]
fn envm02_delim_comes_from_the_same_directory_only() {
    let t = TempDir::new().unwrap();
    write(&t.path().join("env"), "V.delim", ",");
    write(&t.path().join("env.launch"), "V.append", "b");
    let mut env = env_of(&[("V", "a")], Context::Launch);
    env.add_launch_layer_env(t.path(), API, None).unwrap();
    assert_eq!(env.get_str("V"), "ab");
}

#[test]
fn envm03_override_and_default() {
    let t = TempDir::new().unwrap();
    write(t.path(), "O.override", "o");
    write(t.path(), "SET.default", "d");
    write(t.path(), "UNSET.default", "d");
    write(t.path(), "EMPTY.default", "d");
    let mut env = env_of(
        &[("O", "x"), ("SET", "user"), ("EMPTY", "")],
        Context::Build,
    );
    env.add_env_dir(t.path(), Action::Override).unwrap();
    assert_eq!(env.get_str("O"), "o");
    assert_eq!(env.get_str("SET"), "user");
    assert_eq!(env.get_str("UNSET"), "d");
    assert_eq!(env.get_str("EMPTY"), "d");
}

#[test]
fn empty_suffix_prepends_with_path_separator_for_parity() {
    let t = TempDir::new().unwrap();
    write(t.path(), "P.", "/new");
    let mut env = env_of(&[("P", "/cur")], Context::Build);
    env.add_env_dir(t.path(), Action::Override).unwrap();
    assert_eq!(env.get_str("P"), "/new:/cur");
}

#[test]
fn envm04_ordering_across_buildpacks_and_layers() {
    // Two buildpacks, the first with two layers; applied in order bp1/a, bp1/b, bp2/a.
    let t = TempDir::new().unwrap();
    let layers = [
        t.path().join("bp1/a"),
        t.path().join("bp1/b"),
        t.path().join("bp2/a"),
    ];
    for (i, l) in layers.iter().enumerate() {
        let env = l.join("env");
        write(&env, "APP.append", &format!("{i}"));
        write(&env, "APP.delim", ":");
        write(&env, "PRE.prepend", &format!("{i}"));
        write(&env, "PRE.delim", ":");
        write(&env, "OVR.override", &format!("{i}"));
        write(&env, "DEF.default", &format!("{i}"));
    }
    let mut env = Env::new(Context::Build);
    for l in &layers {
        env.add_build_layer(l, API).unwrap();
    }
    assert_eq!(env.get_str("APP"), "0:1:2", "earlier buildpacks precede");
    assert_eq!(env.get_str("PRE"), "2:1:0", "later buildpacks precede");
    assert_eq!(env.get_str("OVR"), "2", "later buildpacks override");
    assert_eq!(env.get_str("DEF"), "0", "earlier default wins");
}

#[test]
fn envm04_layer_dirs_order_env_then_launch_then_process() {
    let t = TempDir::new().unwrap();
    let l = t.path();
    for (dir, val) in [("env", "e"), ("env.launch", "l"), ("env.launch/web", "p")] {
        write(&l.join(dir), "APP.append", val);
        write(&l.join(dir), "APP.delim", ",");
        write(&l.join(dir), "PRE.prepend", val);
        write(&l.join(dir), "PRE.delim", ",");
        write(&l.join(dir), "OVR", val);
        write(&l.join(dir), "DEF.default", val);
    }
    write(&l.join("env.build"), "BUILD_ONLY", "b");
    let mut env = Env::new(Context::Launch);
    env.add_launch_layer_env(l, API, Some("web")).unwrap();
    assert_eq!(env.get_str("APP"), "e,l,p");
    assert_eq!(env.get_str("PRE"), "p,l,e");
    assert_eq!(env.get_str("OVR"), "p");
    assert_eq!(env.get_str("DEF"), "e");
    assert_eq!(env.get("BUILD_ONLY"), None);

    let mut other = Env::new(Context::Launch);
    other.add_launch_layer_env(l, API, Some("worker")).unwrap();
    assert_eq!(
        other.get_str("OVR"),
        "l",
        "process-specific dir only for its process"
    );
    let mut none = Env::new(Context::Launch);
    none.add_launch_layer_env(l, API, None).unwrap();
    assert_eq!(none.get_str("APP"), "e,l");
}

#[test]
fn build_layer_uses_env_build_not_env_launch() {
    let t = TempDir::new().unwrap();
    write(&t.path().join("env.build"), "B", "b");
    write(&t.path().join("env.launch"), "L", "l");
    let mut env = Env::new(Context::Build);
    env.add_build_layer(t.path(), API).unwrap();
    assert_eq!(env.get_str("B"), "b");
    assert_eq!(env.get("L"), None);
}

#[test]
fn envm05_reference_launcher_fixture() {
    let t = TempDir::new().unwrap();
    write(
        &t.path().join("env.launch"),
        "OTHER_VAR.append",
        "other-bp-val",
    );
    write(&t.path().join("env.launch"), "OTHER_VAR.delim", "**");
    write(
        &t.path().join("env.launch/worker"),
        "WORKER_VAR",
        "worker-val",
    );
    let base = [("OTHER_VAR", "other-user-val")];
    let mut web = Env::for_launch(base, Path::new("/cnb/process"), Path::new("/cnb/lifecycle"));
    web.add_launch_layer_env(t.path(), API, Some("web"))
        .unwrap();
    assert_eq!(web.get_str("OTHER_VAR"), "other-user-val**other-bp-val");
    assert_eq!(web.get("WORKER_VAR"), None);
    let mut worker = Env::for_launch(base, Path::new("/cnb/process"), Path::new("/cnb/lifecycle"));
    worker
        .add_launch_layer_env(t.path(), API, Some("worker"))
        .unwrap();
    assert_eq!(worker.get_str("WORKER_VAR"), "worker-val");
}

#[test]
fn env08_build_root_dirs() {
    let t = TempDir::new().unwrap();
    for d in ["bin", "lib", "include", "pkgconfig"] {
        fs::create_dir_all(t.path().join(d)).unwrap();
    }
    let mut env = env_of(&[("PATH", "/usr/bin"), ("CPATH", "")], Context::Build);
    env.add_root_dir(t.path()).unwrap();
    let p = |s: &str| t.path().join(s).to_string_lossy().into_owned();
    assert_eq!(env.get_str("PATH"), format!("{}:/usr/bin", p("bin")));
    assert_eq!(env.get_str("LD_LIBRARY_PATH"), p("lib"));
    assert_eq!(env.get_str("LIBRARY_PATH"), p("lib"));
    assert_eq!(env.get_str("CPATH"), p("include"));
    assert_eq!(env.get_str("PKG_CONFIG_PATH"), p("pkgconfig"));
}

#[test]
fn env09_launch_root_dirs_only_bin_and_lib() {
    let t = TempDir::new().unwrap();
    for d in ["bin", "lib", "include", "pkgconfig"] {
        fs::create_dir_all(t.path().join(d)).unwrap();
    }
    let mut env = Env::new(Context::Launch);
    env.add_root_dir(t.path()).unwrap();
    let keys: Vec<_> = env
        .iter()
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect();
    assert_eq!(keys, ["LD_LIBRARY_PATH", "PATH"]);
}

#[test]
fn env10_later_layers_end_up_first_in_path() {
    let t = TempDir::new().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    fs::create_dir_all(a.join("bin")).unwrap();
    fs::create_dir_all(b.join("bin")).unwrap();
    let mut env = Env::new(Context::Launch);
    env.add_root_dir(&a).unwrap();
    env.add_root_dir(&b).unwrap();
    assert_eq!(
        env.get_str("PATH"),
        format!("{}:{}", b.join("bin").display(), a.join("bin").display())
    );
}

#[test]
fn env01_build_allowlist_drops_secrets_and_cnb_vars() {
    let host = [
        ("CNB_REGISTRY_AUTH", "{\"r\":\"Basic x\"}"),
        ("CNB_PLATFORM_API", "0.12"),
        ("CNB_STACK_ID", "stack"),
        ("AWS_SECRET_ACCESS_KEY", "s"),
        ("HOME", "/home/cnb"),
        ("HOSTNAME", "h"),
        ("http_proxy", "p"),
        ("HTTPS_PROXY", "P"),
        ("NO_PROXY", "n"),
        ("PATH", "/usr/bin"),
        ("LD_LIBRARY_PATH", "/l"),
        ("LIBRARY_PATH", "/L"),
        ("CPATH", "/c"),
        ("PKG_CONFIG_PATH", "/k"),
        ("BP_FOO", "bar"),
    ];
    let env = Env::for_build(host);
    let keys: Vec<_> = env
        .iter()
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        keys,
        [
            "CNB_STACK_ID",
            "CPATH",
            "HOME",
            "HOSTNAME",
            "HTTPS_PROXY",
            "LD_LIBRARY_PATH",
            "LIBRARY_PATH",
            "NO_PROXY",
            "PATH",
            "PKG_CONFIG_PATH",
            "http_proxy"
        ]
    );
    assert_eq!(env.get("CNB_REGISTRY_AUTH"), None);
}

#[test]
fn ln06_launch_env_excludes_lifecycle_vars_and_process_dirs() {
    let host = [
        ("CNB_LAYERS_DIR", "/layers"),
        ("CNB_APP_DIR", "/workspace"),
        ("CNB_PROCESS_TYPE", "web"),
        ("CNB_PLATFORM_API", "0.12"),
        ("CNB_DEPRECATION_MODE", "quiet"),
        ("CNB_OTHER", "kept"),
        ("PATH", "/cnb/process:/usr/bin:/cnb/lifecycle:/bin"),
        ("BPL_X", "y"),
    ];
    let env = Env::for_launch(host, Path::new("/cnb/process"), Path::new("/cnb/lifecycle"));
    let keys: Vec<_> = env
        .iter()
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect();
    assert_eq!(keys, ["BPL_X", "CNB_OTHER", "PATH"]);
    assert_eq!(env.get_str("PATH"), "/usr/bin:/bin");
}

#[test]
fn env02_platform_env_prepends_path_vars_and_overrides_others() {
    let t = TempDir::new().unwrap();
    let envd = t.path().join("env");
    write(&envd, "PATH", "/user/bin");
    write(&envd, "FOO", "user-foo\n");
    write(&envd, "BAR.append", "kept-literally");
    fs::create_dir_all(envd.join("adir")).unwrap();
    let base = env_of(&[("PATH", "/usr/bin"), ("FOO", "x")], Context::Build);
    let env = base.with_overrides(Some(t.path()), None).unwrap();
    assert_eq!(env.get_str("PATH"), "/user/bin:/usr/bin");
    assert_eq!(env.get_str("FOO"), "user-foo\n");
    assert_eq!(env.get_str("BAR.append"), "kept-literally");
    assert_eq!(env.get("adir"), None);
    assert_eq!(base.get_str("FOO"), "x", "overrides never persist (ENV-07)");
}

#[test]
fn env03_build_config_env_defaults_and_applies_after_user_env() {
    let platform = TempDir::new().unwrap();
    write(&platform.path().join("env"), "USER_SET", "user");
    let config = TempDir::new().unwrap();
    let envd = config.path().join("env");
    write(&envd, "USER_SET", "operator");
    write(&envd, "NEW", "operator");
    write(&envd, "FORCED.override", "operator");
    write(&envd, "USER_SET.append", "+op");
    let base = Env::new(Context::Build);
    let env = base
        .with_overrides(Some(platform.path()), Some(config.path()))
        .unwrap();
    assert_eq!(env.get_str("USER_SET"), "user+op");
    assert_eq!(env.get_str("NEW"), "operator");
    assert_eq!(env.get_str("FORCED"), "operator");
    // clear-env = true: no user env, build-config still applies.
    let cleared = base.with_overrides(None, Some(config.path())).unwrap();
    assert_eq!(cleared.get_str("USER_SET"), "operator+op");
}

#[test]
fn symlinks_are_followed_and_symlinked_dirs_skipped() {
    let t = TempDir::new().unwrap();
    let envd = t.path().join("env");
    write(t.path(), "target", "linked");
    fs::create_dir_all(t.path().join("dir")).unwrap();
    fs::create_dir_all(&envd).unwrap();
    std::os::unix::fs::symlink(t.path().join("target"), envd.join("LINK")).unwrap();
    std::os::unix::fs::symlink(t.path().join("dir"), envd.join("DIRLINK")).unwrap();
    let mut env = Env::new(Context::Launch);
    env.add_env_dir(&envd, Action::Override).unwrap();
    assert_eq!(env.get_str("LINK"), "linked");
    assert_eq!(env.get("DIRLINK"), None);
}

#[test]
fn dangling_symlink_is_an_error_naming_the_file() {
    let t = TempDir::new().unwrap();
    fs::create_dir_all(t.path()).unwrap();
    std::os::unix::fs::symlink(t.path().join("nope"), t.path().join("BROKEN")).unwrap();
    let err = Env::new(Context::Build)
        .add_env_dir(t.path(), Action::Override)
        .unwrap_err();
    assert!(err.to_string().contains("BROKEN"), "{err}");
}

#[test]
fn missing_dirs_are_not_errors() {
    let t = TempDir::new().unwrap();
    let mut env = Env::new(Context::Launch);
    env.add_env_dir(&t.path().join("missing"), Action::Override)
        .unwrap();
    env.add_root_dir(&t.path().join("missing")).unwrap();
    env.add_launch_layer_env(&t.path().join("missing"), API, Some("web"))
        .unwrap();
    assert!(env.vars().is_empty());
}

#[test]
fn non_utf8_values_are_kept_as_bytes() {
    let t = TempDir::new().unwrap();
    fs::write(t.path().join("BIN"), b"\xff\xfe").unwrap();
    let mut env = Env::new(Context::Launch);
    env.add_env_dir(t.path(), Action::Override).unwrap();
    assert_eq!(env.get("BIN").unwrap().as_bytes(), b"\xff\xfe");
    assert_eq!(env.to_list()[0].as_bytes(), b"BIN=\xff\xfe");
}

#[test]
fn escape_id_replaces_slashes() {
    assert_eq!(escape_id("some/bp/id"), "some_bp_id");
}

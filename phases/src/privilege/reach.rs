//! Volume reachability for the build user (platform spec "Build user"; checklist G-19): before a phase
//! hands its volumes to `CNB_USER_ID:CNB_GROUP_ID` and drops to it, every volume it will use must be
//! reachable by that user, i.e. every existing directory on the way to it must be searchable (`x`) by the
//! user, its primary group or one of its supplementary groups. A checkout or volume under a 0700 parent
//! (`/root/...`, a `mktemp -d`) is not: instead of a bare `Permission denied` half-way through the phase,
//! [`check_reachable`] fails up front naming the volume, the uid/gid and the first directory that blocks
//! it, with the exit code the reference gives a failed privilege step (1).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::cli::{Inputs, Phase};
use crate::Failure;

/// A directory the build user cannot search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocker {
    /// The directory.
    pub dir: PathBuf,
    /// Its owner uid.
    pub owner: u32,
    /// Its group.
    pub group: u32,
    /// Its permission bits (`0o700`).
    pub mode: u32,
}

/// The first existing directory on the way to `path` (from `/` down, `path` itself included when it is a
/// directory) that `uid` with primary group `gid` and supplementary `groups` cannot search, judged from
/// the mode bits as the kernel does (owner bits for the owner, else group bits for a group member, else
/// the other bits; uid 0 passes). Components that do not exist yet end the walk: the phase creates them.
pub fn first_blocking_dir(path: &Path, uid: u32, gid: u32, groups: &[u32]) -> Option<Blocker> {
    if uid == 0 {
        return None;
    }
    let mut cur = PathBuf::new();
    for c in path.components() {
        cur.push(c);
        let m = std::fs::metadata(&cur).ok()?;
        if !m.is_dir() {
            return None;
        }
        let mode = m.mode() & 0o7777;
        let bit = if m.uid() == uid {
            0o100
        } else if m.gid() == gid || groups.contains(&m.gid()) {
            0o010
        } else {
            0o001
        };
        if mode & bit == 0 {
            return Some(Blocker {
                dir: cur,
                owner: m.uid(),
                group: m.gid(),
                mode: mode & 0o777,
            });
        }
    }
    None
}

/// Every path `phase` reads or writes as the build user after dropping privileges: its volumes, the app
/// and platform directories, the layout directory, and the parents of the files it writes.
pub fn paths_for(phase: Phase, inputs: &Inputs) -> Vec<PathBuf> {
    let parent = |p: &Path| p.parent().map(Path::to_path_buf);
    let mut v: Vec<Option<PathBuf>> = vec![Some(inputs.layers_dir.clone())];
    let layout = inputs.layout_dir.clone().filter(|_| inputs.use_layout);
    match phase {
        Phase::Analyzer => v.extend([
            inputs.cache_dir.clone(),
            inputs.launch_cache_dir.clone(),
            layout,
            parent(&inputs.analyzed_path),
        ]),
        Phase::Restorer => v.extend([
            inputs.cache_dir.clone(),
            layout,
            parent(&inputs.analyzed_path),
            parent(&inputs.group_path),
        ]),
        Phase::Exporter => v.extend([
            Some(inputs.app_dir.clone()),
            inputs.cache_dir.clone(),
            inputs.launch_cache_dir.clone(),
            layout,
            parent(&inputs.analyzed_path),
            parent(&inputs.group_path),
            parent(&inputs.report_path),
            parent(&inputs.project_metadata_path),
            parent(&inputs.launcher_path),
        ]),
        Phase::Rebaser => {
            v = vec![layout, parent(&inputs.report_path)];
        }
        Phase::Creator => v.extend([
            Some(inputs.app_dir.clone()),
            Some(inputs.platform_dir.clone()),
            Some(inputs.buildpacks_dir.clone()),
            inputs.cache_dir.clone(),
            inputs.launch_cache_dir.clone(),
            layout,
            parent(&inputs.order_path),
            parent(&inputs.analyzed_path),
            parent(&inputs.group_path),
            parent(&inputs.plan_path),
            parent(&inputs.report_path),
            parent(&inputs.launcher_path),
        ]),
        Phase::Extender => v.extend([
            Some(inputs.app_dir.clone()),
            Some(inputs.platform_dir.clone()),
            Some(inputs.buildpacks_dir.clone()),
            parent(&inputs.group_path),
            parent(&inputs.plan_path),
        ]),
        Phase::Detector | Phase::Builder => {}
    }
    let mut out: Vec<PathBuf> = Vec::new();
    for p in v.into_iter().flatten() {
        if !p.as_os_str().is_empty() && !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// Fails when the build user `uid:gid` (with `groups`) cannot reach one of `paths`:
/// `failed to access volume <path>: the build user <uid>:<gid> cannot enter <dir> (owner <o>:<g>,
/// mode <mode>); make it traversable (chmod o+x <dir>) or move the volume out of it` (exit 1).
pub fn check_paths(paths: &[PathBuf], uid: u32, gid: u32, groups: &[u32]) -> Result<(), Failure> {
    for p in paths {
        if let Some(b) = first_blocking_dir(p, uid, gid, groups) {
            return Err(Failure::msg(
                cnb_spec::exit::FAILED,
                format!("access volume {}", p.display()),
                format!(
                    "the build user {uid}:{gid} cannot enter {} (owner {}:{}, mode {:04o}); make it \
                     traversable (chmod o+x {}) or move the volume out of it",
                    b.dir.display(),
                    b.owner,
                    b.group,
                    b.mode,
                    b.dir.display()
                ),
            ));
        }
    }
    Ok(())
}

/// [`check_paths`] on [`paths_for`] `phase`, for `inputs.uid:gid` with the supplementary groups
/// `/etc/group` gives the user (the ones [`super::drop_to`] will set).
pub fn check_reachable(phase: Phase, inputs: &Inputs) -> Result<(), Failure> {
    let user = super::BuildUser::lookup(
        inputs.uid,
        inputs.gid,
        Path::new(super::passwd::PASSWD_PATH),
        Path::new(super::passwd::GROUP_PATH),
    );
    check_paths(
        &paths_for(phase, inputs),
        inputs.uid,
        inputs.gid,
        &user.groups,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn finds_the_first_parent_that_blocks() {
        let tmp = tempfile::tempdir().unwrap();
        let top = tmp.path();
        chmod(top, 0o755);
        let private = top.join("private");
        let vol = private.join("inner/layers");
        std::fs::create_dir_all(&vol).unwrap();
        for d in [private.join("inner"), vol.clone()] {
            chmod(&d, 0o755); // whatever the umask
        }
        chmod(&private, 0o700);
        let me = nix::unistd::getuid().as_raw();
        let other = if me == 4242 { 4243 } else { 4242 };
        let b = first_blocking_dir(&vol, other, other, &[]).unwrap();
        assert_eq!(b.dir, private);
        assert_eq!(b.mode, 0o700);
        // The owner passes; so does uid 0; a missing tail ends the walk.
        assert_eq!(first_blocking_dir(&vol, me, me, &[]), None);
        assert_eq!(first_blocking_dir(&vol, 0, 0, &[]), None);
        chmod(&private, 0o750);
        let group = std::fs::metadata(&private).unwrap().gid();
        let via_group = if group == other { other + 1 } else { group };
        assert_eq!(
            first_blocking_dir(&vol, other, other, &[via_group]),
            None,
            "a supplementary group with g+x passes"
        );
        assert!(first_blocking_dir(&vol, other, other, &[]).is_some());
        chmod(&private, 0o711);
        assert_eq!(
            first_blocking_dir(&vol.join("not/yet"), other, other, &[]),
            None
        );
        let f = check_paths(std::slice::from_ref(&vol), other, other, &[]);
        assert!(f.is_ok());
        chmod(&private, 0o700);
        let f = check_paths(std::slice::from_ref(&vol), other, other, &[]).unwrap_err();
        assert_eq!(f.code, 1);
        let msg = f.to_string();
        assert!(
            msg.contains(&format!("failed to access volume {}", vol.display())),
            "{msg}"
        );
        assert!(
            msg.contains(&format!(
                "the build user {other}:{other} cannot enter {}",
                private.display()
            )),
            "{msg}"
        );
        assert!(msg.contains("mode 0700"), "{msg}");
        chmod(&private, 0o755);
    }
}

//! `/etc/passwd` and `/etc/group` parsing without NSS (the binaries are static and run inside arbitrary
//! images, where only the files count). Malformed lines, comments and NIS `+`/`-` lines are skipped, as
//! glibc's `files` backend does.

use std::path::Path;

/// The passwd file inside the image the phase runs in.
pub const PASSWD_PATH: &str = "/etc/passwd";
/// The group file inside the image the phase runs in.
pub const GROUP_PATH: &str = "/etc/group";

/// One `/etc/passwd` line: `name:password:uid:gid:gecos:home:shell`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// GECOS field (full name etc.).
    pub gecos: String,
    /// Home directory.
    pub home: String,
    /// Login shell.
    pub shell: String,
}

/// One `/etc/group` line: `name:password:gid:member,member`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    /// Group name.
    pub name: String,
    /// Group id.
    pub gid: u32,
    /// Member login names.
    pub members: Vec<String>,
}

fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim_end).filter(|l| {
        !l.is_empty() && !l.starts_with('#') && !l.starts_with('+') && !l.starts_with('-')
    })
}

/// Parses passwd text; malformed lines are skipped.
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    lines(text)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                gecos: f[4].to_string(),
                home: f[5].to_string(),
                shell: f[6].to_string(),
            })
        })
        .collect()
}

/// Parses group text; malformed lines are skipped.
pub fn parse_group(text: &str) -> Vec<GroupEntry> {
    lines(text)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
                members: f[3]
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

/// Reads and parses a passwd file.
pub fn read_passwd(path: &Path) -> std::io::Result<Vec<PasswdEntry>> {
    Ok(parse_passwd(&std::fs::read_to_string(path)?))
}

/// The entry of `uid` in the passwd file at `path` (`None` when the file or the entry is missing).
pub fn entry_for_uid(path: &Path, uid: u32) -> Option<PasswdEntry> {
    read_passwd(path).ok()?.into_iter().find(|e| e.uid == uid)
}

/// Reads and parses a group file.
pub fn read_group(path: &Path) -> std::io::Result<Vec<GroupEntry>> {
    Ok(parse_group(&std::fs::read_to_string(path)?))
}

/// The build user (`CNB_USER_ID`/`CNB_GROUP_ID`) as far as the image's files describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildUser {
    /// User id.
    pub uid: u32,
    /// Group id (from `CNB_GROUP_ID`, not necessarily the passwd primary group).
    pub gid: u32,
    /// Login name, if the uid has a passwd entry.
    pub name: Option<String>,
    /// Home directory, if the uid has a passwd entry.
    pub home: Option<String>,
    /// Supplementary groups to run with: `gid` first, then every group listing the user as a member.
    pub groups: Vec<u32>,
}

impl BuildUser {
    /// Looks `uid` up in the given files; missing or unreadable files just leave the optional fields
    /// empty (an image need not have them) and the groups at `[gid]`.
    pub fn lookup(uid: u32, gid: u32, passwd_path: &Path, group_path: &Path) -> BuildUser {
        let entry = read_passwd(passwd_path)
            .unwrap_or_default()
            .into_iter()
            .find(|e| e.uid == uid);
        let mut groups = vec![gid];
        if let Some(name) = entry.as_ref().map(|e| e.name.as_str()) {
            for g in read_group(group_path).unwrap_or_default() {
                if g.members.iter().any(|m| m == name) && !groups.contains(&g.gid) {
                    groups.push(g.gid);
                }
            }
        }
        BuildUser {
            uid,
            gid,
            name: entry.as_ref().map(|e| e.name.clone()),
            home: entry.map(|e| e.home),
            groups,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
# comment
root:x:0:0:root:/root:/bin/bash
cnb:x:1000:1000:CNB,,,:/home/cnb:/bin/sh
broken:x:notanumber:1:::/bin/sh
short:x:1
+nis::::::
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
";

    const GROUP: &str = "\
root:x:0:
cnb:x:1000:
docker:x:999:alice, cnb
audio:x:29:alice
bad:x:zz:cnb
";

    #[test]
    fn parses_passwd() {
        let e = parse_passwd(PASSWD);
        assert_eq!(e.len(), 3);
        assert_eq!(
            e[1],
            PasswdEntry {
                name: "cnb".into(),
                uid: 1000,
                gid: 1000,
                gecos: "CNB,,,".into(),
                home: "/home/cnb".into(),
                shell: "/bin/sh".into(),
            }
        );
        assert_eq!(e[2].uid, 65534);
    }

    #[test]
    fn parses_group() {
        let g = parse_group(GROUP);
        assert_eq!(g.len(), 4);
        assert_eq!(g[2].members, vec!["alice", "cnb"]);
        assert!(g[0].members.is_empty());
    }

    #[test]
    fn build_user_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let (p, g) = (dir.path().join("passwd"), dir.path().join("group"));
        std::fs::write(&p, PASSWD).unwrap();
        std::fs::write(&g, GROUP).unwrap();
        let u = BuildUser::lookup(1000, 1000, &p, &g);
        assert_eq!(u.name.as_deref(), Some("cnb"));
        assert_eq!(u.home.as_deref(), Some("/home/cnb"));
        assert_eq!(u.groups, vec![1000, 999]);
        // Unknown uid, missing files: still usable.
        let u = BuildUser::lookup(4242, 7, &dir.path().join("nope"), &g);
        assert_eq!((u.name, u.home, u.groups), (None, None, vec![7]));
    }
}

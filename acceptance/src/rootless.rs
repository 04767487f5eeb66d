//! The unprivileged user rootless tests run as: `cnb-extend-rootless` (uid 23456) with a subordinate
//! id range in `/etc/subuid` and `/etc/subgid` (the same user the library's rootless extender tests
//! use), created when missing. Needs root.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::process::Command;

/// The user's name.
pub const USER: &str = "cnb-extend-rootless";
/// The user's uid.
pub const ID: u32 = 23456;

fn id(args: &[&str]) -> Option<String> {
    Command::new("id")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// Makes sure the user and its subordinate ranges exist (serialised between test processes by a
/// lock file); returns its uid and gid.
pub fn ensure_user() -> (u32, u32) {
    let lock = std::fs::File::create(std::env::temp_dir().join("cnb-rootless-user.lock"))
        .expect("create the rootless user lock");
    // SAFETY: flock on a descriptor we own; released when `lock` is dropped.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    if id(&[USER]).is_none() {
        let st = Command::new("useradd")
            .args(["-M", "-N", "-u", &ID.to_string()])
            .args(["-s", "/usr/sbin/nologin", USER])
            .status()
            .expect("run useradd");
        assert!(st.success() || id(&[USER]).is_some(), "useradd {USER}");
    }
    for file in ["/etc/subuid", "/etc/subgid"] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if !text.lines().any(|l| l.starts_with(&format!("{USER}:"))) {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
                .unwrap_or_else(|e| panic!("open {file}: {e}"));
            writeln!(f, "{USER}:300000:65536").unwrap_or_else(|e| panic!("write {file}: {e}"));
        }
    }
    let gid = id(&["-g", USER])
        .and_then(|g| g.parse().ok())
        .expect("the rootless user's gid");
    (ID, gid)
}

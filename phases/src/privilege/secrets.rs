//! Registry credentials out of buildpacks' reach (platform spec "Security Considerations": buildpacks
//! must not be given registry credentials; checklist G-16, G-25; issue 14 "credentials through /proc").
//!
//! A buildpack runs with the build user's uid, and so may the phase that started it (the creator as uid
//! 1000, Tekton's way; the builder when a platform passes `CNB_REGISTRY_AUTH`). Such a buildpack could
//! read the phase's `/proc/<ppid>/environ` (the *initial* environment block, which `unsetenv` does not
//! touch) and `/proc/<ppid>/mem`. So, at process start:
//!
//! - [`take_from_environment`] copies `CNB_REGISTRY_AUTH` into memory, overwrites its value in the
//!   initial environment block with NUL bytes and removes the variable;
//! - [`protect_process`] makes the process non-dumpable (`PR_SET_DUMPABLE=0`): its `/proc/<pid>/environ`
//!   and `/mem` then belong to root and ptrace access is refused to same-uid processes. A change of
//!   uid resets the flag to `fs.suid_dumpable`, so `privilege::drop_to` applies it again.
//!
//! Phases read the credentials through [`registry_auth`]; the creator pins the credentials it resolved
//! while privileged with [`set_registry_auth`] instead of writing them back into its environment.

use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use cnb_spec::env::REGISTRY_AUTH;

/// The credentials taken out of the environment (or pinned by the creator).
static STORE: Mutex<Option<String>> = Mutex::new(None);
/// Whether [`take_from_environment`] ran: from then on the environment is not consulted.
static TAKEN: AtomicBool = AtomicBool::new(false);
/// Whether this process holds credentials and must stay non-dumpable.
static PROTECTED: AtomicBool = AtomicBool::new(false);

extern "C" {
    static mut environ: *mut *mut libc::c_char;
}

/// Moves `CNB_REGISTRY_AUTH` from the process environment into memory (see the module docs). Call it
/// first thing in `main`, while the process is single-threaded. Returns whether it was set.
pub fn take_from_environment() -> bool {
    let prefix = format!("{REGISTRY_AUTH}=");
    let mut value: Option<String> = None;
    // SAFETY: single-threaded at start-up (documented precondition), so nothing reads or changes the
    // environment meanwhile. `environ` is the NULL-terminated array of NUL-terminated strings libc
    // keeps; every entry is valid, writable memory (the initial block on the stack or a setenv copy).
    unsafe {
        let mut p = environ;
        while !p.is_null() && !(*p).is_null() {
            let entry = *p;
            let bytes = CStr::from_ptr(entry).to_bytes();
            if let Some(v) = bytes.strip_prefix(prefix.as_bytes()) {
                if value.is_none() {
                    value = Some(String::from_utf8_lossy(v).into_owned());
                }
                std::ptr::write_bytes(entry.add(prefix.len()), 0, v.len());
            }
            p = p.add(1);
        }
    }
    // Single-threaded here (see above).
    std::env::remove_var(REGISTRY_AUTH);
    let had = value.as_deref().is_some_and(|v| !v.is_empty());
    if let Ok(mut s) = STORE.lock() {
        *s = value.filter(|v| !v.is_empty());
    }
    TAKEN.store(true, Ordering::SeqCst);
    had
}

/// Forgets the credentials (phases that never talk to registries: detector, builder), overwriting the
/// memory they were kept in: a process that stays dumpable must not leave them in freed heap.
pub fn discard() {
    let taken = STORE.lock().ok().and_then(|mut s| s.take());
    if let Some(v) = taken {
        wipe(v);
    }
}

/// In a forked child that must be dumpable (the extender's user-namespace worker: its parent, an
/// unprivileged process, writes the child's `/proc/<pid>/uid_map`, and `newuidmap` checks the owner of
/// `/proc/<pid>`, which a non-dumpable process hands to root): wipes this copy of the credentials and
/// makes the process dumpable. Steps the worker runs `exec` their own programs, so no registry secret
/// remains in a readable address space; a worker that needs them (the creator's) is made non-dumpable
/// again once mapped and gets them back with [`restore_in_forked_child`]. Never blocks (a lock held at
/// fork time is left alone).
pub fn forget_and_become_dumpable() {
    if let Ok(mut s) = STORE.try_lock() {
        if let Some(v) = s.take() {
            wipe(v);
        }
    }
    // SAFETY: prctl(PR_SET_DUMPABLE, 1) takes plain integers and changes only this process's flag.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) };
}

/// In the forked worker of [`forget_and_become_dumpable`], once it is non-dumpable again: takes back
/// the credentials its parent sent. Never blocks (false when the lock was held at fork time).
pub fn restore_in_forked_child(json: String) -> bool {
    match STORE.try_lock() {
        Ok(mut s) => {
            *s = Some(json);
            TAKEN.store(true, Ordering::SeqCst);
            true
        }
        Err(_) => {
            wipe(json);
            false
        }
    }
}

/// Overwrites a string's bytes before freeing them.
fn wipe(v: String) {
    let mut bytes = v.into_bytes();
    for b in bytes.iter_mut() {
        // SAFETY: a valid, exclusive reference into the vector; volatile so the store is not elided.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
}

/// The `CNB_REGISTRY_AUTH` JSON: the value taken at start (or pinned), else — in a process that never
/// called [`take_from_environment`], e.g. a library user or a test — the environment's.
pub fn registry_auth() -> Option<String> {
    if TAKEN.load(Ordering::SeqCst) {
        return STORE.lock().ok().and_then(|s| s.clone());
    }
    std::env::var(REGISTRY_AUTH).ok().filter(|v| !v.is_empty())
}

/// Replaces the credentials phases read later (the creator's credentials pinned while privileged).
pub fn set_registry_auth(json: String) {
    let old = STORE.lock().ok().and_then(|mut s| s.replace(json));
    if let Some(v) = old {
        wipe(v);
    }
    TAKEN.store(true, Ordering::SeqCst);
}

/// Makes this process non-dumpable and remembers to keep it so across uid changes.
pub fn protect_process() -> std::io::Result<()> {
    PROTECTED.store(true, Ordering::SeqCst);
    set_non_dumpable()
}

/// Re-applies [`protect_process`] after a uid/gid change (which resets the flag), when it was applied.
pub fn reprotect() -> std::io::Result<()> {
    if PROTECTED.load(Ordering::SeqCst) {
        set_non_dumpable()
    } else {
        Ok(())
    }
}

fn set_non_dumpable() -> std::io::Result<()> {
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) takes plain integers and changes only this process's flag.
    let r = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Whether this process is dumpable (`PR_GET_DUMPABLE`), for tests and debug logs.
pub fn is_dumpable() -> bool {
    // SAFETY: PR_GET_DUMPABLE only reads this process's flag.
    unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) == 1 }
}

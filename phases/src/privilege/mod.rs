//! Privileges: run as the build user, chown volumes, refuse root where the spec says (checklist G-19, G-20).

//! Small base images (busybox-static rootfs + build user) as OCI layouts for tests.

//! A real OCI registry (Debian `docker-registry`) on 127.0.0.1 with a free port: plain, basic auth, TLS.

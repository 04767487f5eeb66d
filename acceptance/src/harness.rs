//! Temp "container roots" and running phase binaries as separate processes (as the build user when root).

//! Environment files and modification rules (buildpack spec "Environment"; checklist §14, §15).

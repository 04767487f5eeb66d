//! Cache stores: a cache directory and a cache image (platform spec "Cache"; checklist §20).

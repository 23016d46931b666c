//! Image and layer store (overlay2 layout), tar apply with whiteouts, registry pull/push, save/load.

//! Image archives: `docker load` ([`load`]) of `docker save` tarballs and OCI image layouts,
//! `docker save` ([`save`]), `docker import` of rootfs tarballs ([`import`]) and
//! `docker export` of a container's filesystem ([`export`]).

pub mod export;
pub mod import;
pub mod load;
pub mod save;

pub use load::LoadedImage;

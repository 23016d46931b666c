//! `docker export`: the container's merged filesystem as one tar stream.

use std::io::Write;

use crate::store::{Store, StoreError};

impl Store {
    /// Write the container's filesystem (mounting it for the duration) as a tar to `out`.
    pub fn export_container<W: Write>(&self, container_id: &str, out: W) -> Result<(), StoreError> {
        let merged = self.mount(container_id)?;
        let res = crate::apply::export_layer(&merged, out);
        let un = self.unmount(container_id);
        res?;
        un
    }
}

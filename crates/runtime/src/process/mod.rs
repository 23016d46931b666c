//! Creating the container process: clone3 with namespaces, the sync channel, the init.

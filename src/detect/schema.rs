//! Work in progress: filled in by the next copy of the detect module.

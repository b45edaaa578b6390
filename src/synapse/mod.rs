//! Beside Synapse: homekey as the authentication service of a Synapse whose
//! `matrix_authentication_service` points at it, in the place of MAS
//! (`../shared/SYNAPSE-DELEGATION.md`). Served only when the config has a `synapse:` section.
//!
//! - [`setup`]: what Synapse's own homeserver.yaml must say (`generate-config --for-synapse`).

pub mod setup;

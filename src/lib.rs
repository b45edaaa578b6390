//! homekey: the accounts and passwords of a Matrix homeserver, Synapse-compatible.
//!
//! Data flows one way: an entry point (CLI command or HTTP route) parses input into the types
//! of [`ids`] and [`config`], hashes with [`password`], and changes accounts through one
//! transaction of the [`store`].

pub mod accounts;
pub mod admin_client;
pub mod audit;
pub mod cli;
pub mod config;
pub mod http;
pub mod ids;
pub mod logging;
pub mod mail;
pub mod oauth;
pub mod password;
#[cfg(test)]
mod property_testing;
pub mod rate_limit;
pub mod secrets;
pub mod shared_secret;
pub mod store;
pub mod synapse;
pub mod threepid;
pub mod utc;
pub mod web;

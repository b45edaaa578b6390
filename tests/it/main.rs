//! homekey's black-box tests, in one test binary (it links once): the store on SQLite and
//! PostgreSQL, the CLI as processes, and hashes checked against Synapse's vectors and rule.

mod admin_moderation;
mod admin_sessions;
mod admin_users;
mod audit;
mod cli_admin;
mod cli_config;
mod cli_hash_password;
mod cli_user;
mod enumeration;
mod hardening_concurrency;
mod hardening_crash;
mod hardening_http;
mod hardening_instances;
mod hardening_outage;
mod hostile_input;
mod last_admin_race;
mod one_account_service;
mod secrets;
mod serve;
mod serve_account;
mod serve_devices;
mod serve_rate_limit;
mod serve_refresh;
mod server;
mod store;
mod support;
mod synadm_interop;
mod synapse_config;
mod synapse_delegation;
mod synapse_interop;
mod synapse_introspection;
mod synapse_proxy;
mod synapse_queue;
mod synapse_register_script;
mod vectors;

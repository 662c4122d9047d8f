//! ecca: a terminal supervisor console for AI coding agents.
//!
//! The core (engine, store, ledger, llm, supervisor, delivery) never touches the terminal;
//! frontends talk to the [`supervisor::Supervisor`] through [`supervisor::Command`] in and
//! [`supervisor::Event`] out. See `docs/architecture.md`.

pub mod agents;
pub mod batch;
pub mod budgets;
pub mod cli;
pub mod config;
pub mod console;
pub mod containers;
pub mod credentials;
pub mod delivery;
pub mod domain;
pub mod engine;
pub mod intake;
pub mod ledger;
pub mod llm;
pub mod mcp;
pub mod money;
pub mod notify;
pub mod repo;
pub mod schedule;
pub mod secrets;
pub mod store;
pub mod supervisor;
pub mod time;

/// Installs ring as the process-wide TLS provider. reqwest is built without one and panics
/// when a client is built before this runs; calling it twice is harmless.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

//! Most integration tests, linked once: each file beside this one is a module of this
//! binary rather than a binary of its own. Thirty test binaries, each linking all of ecca
//! and its dependencies, took 2.7 GB of disk and most of the build's time. The tests that
//! act on the Docker engine as a whole (`containers_live`, `sandbox`, `confinement`) stay
//! binaries of their own, so that nothing else runs beside them.

mod batch_runs;
mod budgets_money;
mod cli;
mod cli_agents;
mod cli_agents_stops;
mod cli_output;
mod cli_review;
mod cli_store;
#[path = "../common/mod.rs"]
mod common;
mod compare;
mod console_app;
mod console_batch_pty;
mod console_money;
mod console_pty;
mod console_repo_pty;
mod console_views;
mod crash_safety;
mod daemon;
mod expo_apps;
mod ledger;
mod mcp_process;
mod mcp_servers;
mod notifications;
mod providers;
mod remote_standins;
mod repo_checks;
mod repo_delivery;
mod repo_failures;
mod repo_git;
mod repo_risk;
mod schedule;
mod supervisor;
mod webhook;
mod wire_fixtures;

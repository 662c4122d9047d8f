//! MCP: the servers ecca ships, the registry of servers, the client manager that drives
//! them, and the engine's production `Tools` on top of it.

pub mod client;
pub mod embedded;
pub mod registry;
pub mod repo_tools;
pub mod servers;
pub mod tools;

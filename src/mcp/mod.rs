//! MCP: the servers ecca ships and the client that drives them.

pub mod servers;

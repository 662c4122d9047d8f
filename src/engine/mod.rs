//! The agent engine: a pure state machine per run ([`fsm`]), the prompts it writes and the
//! replies it reads ([`prompts`]), the rolling context ([`context`]), the tool interface
//! ([`tools`]) and the driver that performs the machine's effects ([`driver`]).

pub mod context;
pub mod criteria;
pub mod driver;
pub mod expo;
pub mod fsm;
pub mod prompts;
pub mod repo_prompts;
pub mod tools;
pub mod workspace;

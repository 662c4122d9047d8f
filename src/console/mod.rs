//! The terminal console. It only draws state and sends `Command`s; the supervisor does the
//! work. See `app` (state), `views` (drawing), `keymap` and `theme` (data).

pub mod app;
pub mod event_loop;
pub mod form;
pub mod keymap;
pub mod model;
pub mod ring;
pub mod terminal;
pub mod theme;
pub mod views;

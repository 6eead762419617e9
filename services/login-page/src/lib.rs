//! The hosted sign-in page: email and password, then the emailed code when login-intake
//! asks for one, over the two services' public HTTP APIs with a client API key of its own.
//! Server-rendered HTML that needs no script; the only state in the browser is the device
//! cookie.

pub mod api;
pub mod config;
pub mod domain;
pub mod error;
pub mod handlers;
pub mod messages;
pub mod pages;
pub mod startup;

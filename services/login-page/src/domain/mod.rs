//! The page's own rules, pure (no IO, no clock of their own): what an API answer means to a
//! person, how an address is shown, the code as typed, the CSRF token, the device cookie.

pub mod browser;
pub mod code;
pub mod csrf;
pub mod device;
pub mod email;
pub mod lang;
pub mod outcome;
pub mod platform;

//! SSO/Google login requests that client backends publish to Kafka
//! (`<namespace>.login-requests`): strict JSON, the domain types and the rule that no
//! password-based request travels over Kafka. It must answer `Ok` or `Err` (the reason the
//! request goes to the dead-letter topic) for every payload, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use login_intake::ingress::LoginRequestMessage;

fuzz_target!(|data: &[u8]| {
    let _ = LoginRequestMessage::parse(data);
});

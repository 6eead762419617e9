//! `POST /v1/challenges/{id}/verify` body parser: strict JSON and the 6-digit code.
//! It must answer `Ok` or `Err` for every body, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use verifier::verify::VerifyRequest;

fuzz_target!(|data: &[u8]| {
    if let Ok(code) = VerifyRequest::parse(data) {
        let digits = code.expose();
        assert!(
            digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()),
            "accepted a code that is not 6 ASCII digits"
        );
    }
});

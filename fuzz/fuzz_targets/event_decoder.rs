//! The event envelope every consumer reads from Kafka. Decoding must never panic, and an
//! envelope that decodes must survive a round trip: what a service re-publishes or stores
//! must read back as the same event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::events::Envelope;

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = Envelope::from_json(data) {
        let json = envelope.to_json();
        match Envelope::from_json(&json) {
            Ok(again) => assert_eq!(again, envelope, "round trip changed the envelope"),
            Err(error) => panic!(
                "round trip failed: {error}; re-encoded as {}",
                String::from_utf8_lossy(&json)
            ),
        }
    }
});

//! `POST /v1/logins` body parser: strict JSON, the domain types (email, user agent, device
//! id, IP) and the rules between fields (password required or refused by `auth_method`).
//! It must answer `Ok` or `Err` for every body, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use login_intake::intake::FirstFactor;
use login_intake::logins::LoginRequest;
use secrecy::ExposeSecret;
use shared::domain::UserAgent;

fuzz_target!(|data: &[u8]| {
    if let Ok(login) = LoginRequest::parse(data) {
        // What the boundary promises to the code past it.
        let email = login.email.as_str();
        assert!(
            email.len() <= 254 && email == email.to_lowercase(),
            "{email:?}"
        );
        let agent = login.user_agent.as_str();
        assert!(agent.len() <= UserAgent::MAX_LEN && !agent.chars().any(char::is_control));
        if let FirstFactor::Password(password) = &login.first_factor {
            assert!((1..=1024).contains(&password.expose_secret().len()));
        }
    }
});

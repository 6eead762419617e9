//! What the page signs users in to: the contract's `shared::domain::Platform` (its
//! `as_str` is the `platform` of `POST /v1/logins`), and the product's name as the page
//! shows it.

pub use shared::domain::Platform;

/// The product's name, the same in every language. Not `Platform::display_name` ("the web
/// Dashboard"), which is worded for a sentence of the code email; the page shows the bare
/// name in its heading and in "You are signed in to Dashboard."
pub fn product_name(platform: Platform) -> &'static str {
    match platform {
        Platform::Dashboard => "Dashboard",
        Platform::Workspace => "Workspace",
        Platform::Ios => "iOS app",
        Platform::Android => "Android app",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_names_parse_back_and_others_do_not() {
        for platform in Platform::ALL {
            assert_eq!(Platform::parse(platform.as_str()), Some(platform));
        }
        assert_eq!(Platform::parse("web"), None);
        assert_eq!(Platform::parse("Dashboard"), None);
    }
}

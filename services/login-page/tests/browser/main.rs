//! The sign-in page in a real browser (headless Chromium over WebDriver) against the real
//! services, broker, PostgreSQL and SMTP server: what a person sees and does, step by step,
//! with a screenshot of each step under `target/login-page-screenshots/<test>/` and an
//! axe-core accessibility check of each page shown.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::browser::{Browser, DESKTOP, LAPTOP_AT_200_PERCENT, PHONE};
use support::system::{Options, System, RETURN_URL};
use support::{unique_email, AT_A_TIME, PASSWORD};

/// A code that is not `code`: a guaranteed wrong guess.
fn wrong_code(code: &str) -> &'static str {
    if code == "000000" {
        "000001"
    } else {
        "000000"
    }
}

/// From the sign-in form: the email (unless the form kept it), the password, then Enter.
async fn sign_in(browser: &Browser, email: &str) {
    let typed = browser.attr_of("#email", "value").await.unwrap_or_default();
    if typed.is_empty() {
        browser.type_into("email", email).await;
    } else {
        assert_eq!(typed, email, "the form kept another address");
    }
    browser.type_into("password", PASSWORD).await;
    browser.press_enter_in("password").await;
}

async fn enter_code(browser: &Browser, code: &str) {
    browser.type_into("code", code).await;
    browser.press_enter_in("code").await;
}

/// The page fits the window's width: nothing to scroll sideways.
async fn fits_the_width(browser: &Browser) {
    let sizes = browser
        .eval("return [document.documentElement.scrollWidth, window.innerWidth];")
        .await;
    let (content, window) = (sizes[0].as_u64().unwrap(), sizes[1].as_u64().unwrap());
    assert!(
        content <= window,
        "{content} px of content in a {window} px window"
    );
}

async fn assert_signed_in(browser: &Browser) {
    assert_eq!(
        browser.text_of("#signed-in-to").await,
        "You are signed in to Dashboard."
    );
    let href = browser.attr_of("#continue", "href").await.unwrap();
    let attempt_id = href
        .strip_prefix(&format!("{RETURN_URL}?attempt_id="))
        .unwrap_or_else(|| panic!("{href} is not the return URL with the attempt id"));
    uuid::Uuid::parse_str(attempt_id).unwrap();
}

#[tokio::test]
async fn a_first_sign_in_takes_the_emailed_code_and_the_same_browser_then_needs_none() {
    let _turn = AT_A_TIME.acquire().await.unwrap();
    let system = System::start(Options::default()).await;
    let email = unique_email("first");
    let user_id = system.create_user(&email).await;
    let mut browser = Browser::open("first-sign-in", DESKTOP, "en-GB,en").await;

    browser.goto(&system.page_url).await;
    assert_eq!(browser.text_of("h1").await, "Sign in to Acme");
    assert_eq!(browser.focused_id().await.as_deref(), Some("email"));
    browser.record_step("sign-in-form").await;
    sign_in(&browser, &email).await;

    assert_eq!(browser.text_of("h1").await, "Check your email");
    assert_eq!(
        browser.text_of("#sent-to").await,
        "We sent a 6-digit sign-in code to f•••@example.com."
    );
    let validity = browser.text_of("#validity").await;
    assert!(
        validity.starts_with("It works for 10 minutes, until "),
        "{validity}"
    );
    assert_eq!(browser.focused_id().await.as_deref(), Some("code"));
    assert_eq!(
        browser.attr_of("#code", "autocomplete").await.as_deref(),
        Some("one-time-code")
    );
    assert_eq!(
        browser.attr_of("#code", "inputmode").await.as_deref(),
        Some("numeric")
    );
    browser.record_step("code-form").await;
    let code = system.inbox.code(&email, 1).await;
    enter_code(&browser, &code).await;
    assert_signed_in(&browser).await;
    browser.record_step("signed-in").await;

    let device = browser.client.get_named_cookie("mfa_device").await.unwrap();
    assert_eq!(device.http_only(), Some(true));
    assert!(device.value().starts_with("browser-"), "{}", device.value());

    // The same browser, another visit: the page starts at the form again, and the known
    // device (its cookie), network and browser need no code.
    system.wait_until_learned(&user_id).await;
    browser.goto(&system.page_url).await;
    assert!(browser.exists("#password").await);
    sign_in(&browser, &email).await;
    assert_signed_in(&browser).await;
    browser.record_step("known-browser-signed-in").await;
    assert_eq!(
        system.inbox.texts_to(&email).await.len(),
        1,
        "no second email"
    );

    browser.close().await;
    system.shut_down().await;
}

#[tokio::test]
async fn a_wrong_code_says_how_many_tries_are_left_then_the_right_one_pasted_signs_in() {
    let _turn = AT_A_TIME.acquire().await.unwrap();
    let system = System::start(Options::default()).await;
    let email = unique_email("wrong");
    system.create_user(&email).await;
    let mut browser = Browser::open("wrong-code", DESKTOP, "en").await;

    browser.goto(&system.page_url).await;
    sign_in(&browser, &email).await;
    let code = system.inbox.code(&email, 1).await;
    enter_code(&browser, wrong_code(&code)).await;

    assert_eq!(
        browser.text_of("#problem p").await,
        "That code is not correct. You have 4 tries left."
    );
    assert_eq!(
        browser.attr_of("#problem", "role").await.as_deref(),
        Some("alert")
    );
    // The focus is on the error, so a screen reader reads it and a keyboard user starts
    // from it.
    assert_eq!(browser.focused_id().await.as_deref(), Some("problem"));
    assert_eq!(
        browser.attr_of("#code", "aria-invalid").await.as_deref(),
        Some("true")
    );
    browser.record_step("incorrect-code").await;

    // Pasted as the email shows it to some readers, with a space in the middle.
    enter_code(&browser, &format!("{} {}", &code[..3], &code[3..])).await;
    assert_signed_in(&browser).await;
    browser.record_step("signed-in").await;

    browser.close().await;
    system.shut_down().await;
}

#[tokio::test]
async fn five_wrong_codes_lock_the_code_and_signing_in_again_sends_a_new_one() {
    let _turn = AT_A_TIME.acquire().await.unwrap();
    let system = System::start(Options::default()).await;
    let email = unique_email("locked");
    system.create_user(&email).await;
    let mut browser = Browser::open("locked-code", DESKTOP, "en").await;

    browser.goto(&system.page_url).await;
    sign_in(&browser, &email).await;
    let first = system.inbox.code(&email, 1).await;
    for tries_left in (1..=4).rev() {
        enter_code(&browser, wrong_code(&first)).await;
        let noun = if tries_left == 1 { "try" } else { "tries" };
        assert_eq!(
            browser.text_of("#problem p").await,
            format!("That code is not correct. You have {tries_left} {noun} left.")
        );
    }
    enter_code(&browser, wrong_code(&first)).await;

    // Locked: back at the sign-in form, the address kept, the way on in the words.
    assert_eq!(
        browser.text_of("#problem p").await,
        "Too many incorrect codes: this code no longer works. To get a new one, sign in again."
    );
    assert_eq!(browser.focused_id().await.as_deref(), Some("problem"));
    browser.record_step("locked").await;
    sign_in(&browser, &email).await;

    assert_eq!(browser.text_of("h1").await, "Check your email");
    browser.record_step("new-code-form").await;
    let second = system.inbox.code(&email, 2).await;
    enter_code(&browser, &second).await;
    assert_signed_in(&browser).await;
    browser.record_step("signed-in").await;

    browser.close().await;
    system.shut_down().await;
}

#[tokio::test]
async fn a_phone_sized_window_shows_every_page_without_sideways_scrolling() {
    let _turn = AT_A_TIME.acquire().await.unwrap();
    let system = System::start(Options::default()).await;
    let email = unique_email("phone");
    system.create_user(&email).await;
    let mut browser = Browser::open("phone", PHONE, "en").await;

    browser.goto(&system.page_url).await;
    let width = browser.eval("return window.innerWidth;").await;
    assert_eq!(width.as_u64(), Some(320), "a 320 px wide window");
    fits_the_width(&browser).await;
    browser.record_step("sign-in-form").await;

    sign_in(&browser, &email).await;
    let code = system.inbox.code(&email, 1).await;
    enter_code(&browser, wrong_code(&code)).await;
    fits_the_width(&browser).await;
    browser.record_step("incorrect-code").await;

    enter_code(&browser, &code).await;
    assert_signed_in(&browser).await;
    fits_the_width(&browser).await;
    browser.record_step("signed-in").await;

    browser.close().await;
    system.shut_down().await;
}

#[tokio::test]
async fn a_french_browser_gets_the_page_in_french_and_the_switch_changes_it() {
    let _turn = AT_A_TIME.acquire().await.unwrap();
    let system = System::start(Options::default()).await;
    let email = unique_email("francais");
    system.create_user(&email).await;
    let mut browser = Browser::open("french", DESKTOP, "fr-FR,fr,en").await;

    browser.goto(&system.page_url).await;
    assert_eq!(browser.text_of("h1").await, "Connexion à Acme");
    assert_eq!(browser.attr_of("html", "lang").await.as_deref(), Some("fr"));
    browser.record_step("sign-in-form").await;
    sign_in(&browser, &email).await;

    assert_eq!(browser.text_of("h1").await, "Consultez vos e-mails");
    let code = system.inbox.code(&email, 1).await;
    enter_code(&browser, wrong_code(&code)).await;
    assert_eq!(
        browser.text_of("#problem p").await,
        "Ce code n’est pas le bon. Il vous reste 4 essais."
    );
    browser.record_step("incorrect-code").await;

    // The switch keeps the code page (the challenge travels in its hidden fields).
    browser.click_and_wait("form.switch button[value=en]").await;
    assert_eq!(browser.text_of("h1").await, "Check your email");
    assert_eq!(browser.attr_of("html", "lang").await.as_deref(), Some("en"));
    browser.record_step("switched-to-english").await;
    enter_code(&browser, &code).await;
    assert_signed_in(&browser).await;

    browser.close().await;
    system.shut_down().await;
}

#[tokio::test]
async fn an_expired_code_says_so_and_signing_in_again_sends_a_new_one() {
    let _turn = AT_A_TIME.acquire().await.unwrap();
    // Long enough to read the second code and type it, short enough to outwait the first.
    let code_ttl = std::time::Duration::from_secs(8);
    let system = System::start(Options {
        code_ttl,
        ..Options::default()
    })
    .await;
    let email = unique_email("expired");
    system.create_user(&email).await;
    let mut browser = Browser::open("expired-code", DESKTOP, "en").await;

    browser.goto(&system.page_url).await;
    sign_in(&browser, &email).await;
    let validity = browser.text_of("#validity").await;
    assert!(
        validity.starts_with("It works for 1 minute, until "),
        "{validity}"
    );
    let first = system.inbox.code(&email, 1).await;
    tokio::time::sleep(code_ttl + std::time::Duration::from_secs(1)).await;
    enter_code(&browser, &first).await;

    assert_eq!(
        browser.text_of("#problem p").await,
        "This code has expired. To get a new one, sign in again."
    );
    assert_eq!(browser.focused_id().await.as_deref(), Some("problem"));
    browser.record_step("expired").await;
    sign_in(&browser, &email).await;
    let second = system.inbox.code(&email, 2).await;
    assert_ne!(second, first, "a new code");
    enter_code(&browser, &second).await;
    assert_signed_in(&browser).await;
    browser.record_step("signed-in").await;

    browser.close().await;
    system.shut_down().await;
}

#[tokio::test]
async fn at_200_percent_zoom_every_page_reflows_to_the_width() {
    let _turn = AT_A_TIME.acquire().await.unwrap();
    let system = System::start(Options::default()).await;
    let email = unique_email("zoom");
    system.create_user(&email).await;
    let mut browser = Browser::open("zoom-200", LAPTOP_AT_200_PERCENT, "en").await;

    browser.goto(&system.page_url).await;
    let zoom = browser
        .eval("return [window.devicePixelRatio, window.innerWidth];")
        .await;
    assert_eq!(zoom[0].as_f64(), Some(2.0), "drawn at 200%");
    assert_eq!(zoom[1].as_u64(), Some(640), "half of 1280 px to lay out in");
    fits_the_width(&browser).await;
    browser.record_step("sign-in-form").await;
    sign_in(&browser, &email).await;
    let code = system.inbox.code(&email, 1).await;
    enter_code(&browser, wrong_code(&code)).await;
    fits_the_width(&browser).await;
    browser.record_step("incorrect-code").await;
    enter_code(&browser, &code).await;
    fits_the_width(&browser).await;
    browser.record_step("signed-in").await;

    browser.close().await;
    system.shut_down().await;
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_read_the_same_and_keep_the_address() {
    let _turn = AT_A_TIME.acquire().await.unwrap();
    let system = System::start(Options::default()).await;
    let email = unique_email("known");
    system.create_user(&email).await;
    let mut browser = Browser::open("wrong-password", DESKTOP, "en").await;

    let mut problems = Vec::new();
    for address in [email.clone(), unique_email("nobody")] {
        browser.goto(&system.page_url).await;
        browser.type_into("email", &address).await;
        browser.type_into("password", "not the password").await;
        browser.press_enter_in("password").await;
        assert_eq!(
            browser.attr_of("#email", "value").await.as_deref(),
            Some(address.as_str())
        );
        assert_eq!(browser.focused_id().await.as_deref(), Some("problem"));
        problems.push(browser.text_of("#problem p").await);
    }
    browser.record_step("wrong-password").await;
    assert_eq!(
        problems[0],
        "The email address or password is not correct. Check them and try again."
    );
    assert_eq!(
        problems[0], problems[1],
        "the page tells no one who has an account"
    );

    browser.close().await;
    system.shut_down().await;
}

#[tokio::test]
async fn the_keyboard_alone_goes_through_the_form_in_reading_order() {
    let _turn = AT_A_TIME.acquire().await.unwrap();
    let system = System::start(Options::default()).await;
    let mut browser = Browser::open("keyboard", DESKTOP, "en").await;

    browser.goto(&system.page_url).await;
    assert_eq!(browser.focused_id().await.as_deref(), Some("email"));
    let tab = fantoccini::key::Key::Tab.to_string();
    browser.type_into("email", &tab).await;
    assert_eq!(browser.focused_id().await.as_deref(), Some("password"));
    browser.type_into("password", &tab).await;
    let focused = browser.client.active_element().await.unwrap();
    assert_eq!(
        focused.attr("type").await.unwrap().as_deref(),
        Some("submit")
    );
    browser.record_step("focus-on-sign-in").await;

    browser.close().await;
    system.shut_down().await;
}

#[tokio::test]
async fn with_login_intake_down_the_page_says_to_try_again_later() {
    let _turn = AT_A_TIME.acquire().await.unwrap();
    let system = System::start(Options {
        intake_down: true,
        ..Options::default()
    })
    .await;
    let mut browser = Browser::open("unavailable", DESKTOP, "en").await;

    browser.goto(&system.page_url).await;
    let email = unique_email("down");
    sign_in(&browser, &email).await;
    assert_eq!(
        browser.text_of("#problem p").await,
        "Signing in is not possible right now. Try again in a few minutes."
    );
    assert_eq!(
        browser.attr_of("#email", "value").await.as_deref(),
        Some(email.as_str())
    );
    browser.record_step("unavailable").await;

    browser.close().await;
    system.shut_down().await;
}

#[tokio::test]
async fn past_the_rate_limit_the_page_says_how_long_to_wait() {
    let _turn = AT_A_TIME.acquire().await.unwrap();
    let system = System::start(Options {
        logins_per_ip: Some(1),
        ..Options::default()
    })
    .await;
    let email = unique_email("limited");
    system.create_user(&email).await;
    let mut browser = Browser::open("rate-limited", DESKTOP, "en").await;

    browser.goto(&system.page_url).await;
    sign_in(&browser, &email).await;
    assert_eq!(browser.text_of("h1").await, "Check your email");
    browser.goto(&system.page_url).await;
    sign_in(&browser, &email).await;
    let problem = browser.text_of("#problem p").await;
    assert!(
        problem.starts_with("Too many sign-in attempts. Wait ")
            && problem.ends_with(" minutes, then try again."),
        "{problem}"
    );
    browser.record_step("rate-limited").await;

    browser.close().await;
    system.shut_down().await;
}

//! The sign-in page in a real browser (headless Chromium over WebDriver) against the real
//! services, broker, PostgreSQL and SMTP server: what a person sees and does, step by step,
//! with a screenshot of each step under `target/login-page-screenshots/<test>/` and an
//! axe-core accessibility check of each page shown.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod scene;
mod support;

use scene::{Scene, Setup};
use support::browser::{LAPTOP_AT_200_PERCENT, PHONE};
use support::system::Options;
use support::unique_email;

#[tokio::test]
async fn a_first_sign_in_takes_the_emailed_code_and_the_same_browser_then_needs_none() {
    let mut scene = Scene::start(
        "first-sign-in",
        Setup {
            languages: "en-GB,en",
            ..Setup::default()
        },
    )
    .await;

    scene.open_the_form().await;
    assert_eq!(scene.browser.text_of("h1").await, "Sign in to Acme");
    assert_eq!(scene.focused_id().await.as_deref(), Some("email"));
    scene.record("sign-in-form").await;
    scene.sign_in().await;

    assert_eq!(scene.browser.text_of("h1").await, "Check your email");
    assert_eq!(
        scene.browser.text_of("#sent-to").await,
        "We sent a 6-digit sign-in code to f•••@example.com."
    );
    let validity = scene.browser.text_of("#validity").await;
    assert!(
        validity.starts_with("It works for 10 minutes, until "),
        "{validity}"
    );
    assert_eq!(scene.focused_id().await.as_deref(), Some("code"));
    assert_eq!(
        scene
            .browser
            .attr_of("#code", "autocomplete")
            .await
            .as_deref(),
        Some("one-time-code")
    );
    assert_eq!(
        scene.browser.attr_of("#code", "inputmode").await.as_deref(),
        Some("numeric")
    );
    scene.record("code-form").await;
    let code = scene.code(1).await;
    scene.pass_with(&code).await;

    let device = scene
        .browser
        .client
        .get_named_cookie("mfa_device")
        .await
        .unwrap();
    assert_eq!(device.http_only(), Some(true));
    assert!(device.value().starts_with("browser-"), "{}", device.value());

    // The same browser, another visit: the page starts at the form again, and the known
    // device (its cookie), network and browser need no code.
    let user_id = scene.user_id.clone().unwrap();
    scene.system.wait_until_learned(&user_id).await;
    scene.open_the_form().await;
    assert!(scene.browser.exists("#password").await);
    scene.sign_in().await;
    scene.assert_signed_in().await;
    scene.record("known-browser-signed-in").await;
    assert_eq!(
        scene.system.inbox.texts_to(&scene.email).await.len(),
        1,
        "no second email"
    );

    scene.end().await;
}

#[tokio::test]
async fn a_wrong_code_says_how_many_tries_are_left_then_the_right_one_pasted_signs_in() {
    let mut scene = Scene::start("wrong-code", Setup::default()).await;

    let code = scene.sign_in_for_a_code().await;
    scene.enter_a_wrong_code(&code).await;

    assert_eq!(
        scene.problem().await,
        "That code is not correct. You have 4 tries left."
    );
    assert_eq!(
        scene.browser.attr_of("#problem", "role").await.as_deref(),
        Some("alert")
    );
    // The focus is on the error, so a screen reader reads it and a keyboard user starts
    // from it.
    assert_eq!(scene.focused_id().await.as_deref(), Some("problem"));
    assert_eq!(
        scene
            .browser
            .attr_of("#code", "aria-invalid")
            .await
            .as_deref(),
        Some("true")
    );
    scene.record("incorrect-code").await;

    // Pasted as the email shows it to some readers, with a space in the middle.
    scene
        .pass_with(&format!("{} {}", &code[..3], &code[3..]))
        .await;

    scene.end().await;
}

#[tokio::test]
async fn five_wrong_codes_lock_the_code_and_signing_in_again_sends_a_new_one() {
    let mut scene = Scene::start("locked-code", Setup::default()).await;

    let first = scene.sign_in_for_a_code().await;
    for tries_left in (1..=4).rev() {
        scene.enter_a_wrong_code(&first).await;
        let noun = if tries_left == 1 { "try" } else { "tries" };
        assert_eq!(
            scene.problem().await,
            format!("That code is not correct. You have {tries_left} {noun} left.")
        );
    }
    scene.enter_a_wrong_code(&first).await;

    // Locked: back at the sign-in form, the address kept, the way on in the words.
    assert_eq!(
        scene.problem().await,
        "Too many incorrect codes: this code no longer works. To get a new one, sign in again."
    );
    assert_eq!(scene.focused_id().await.as_deref(), Some("problem"));
    scene.record("locked").await;
    scene.sign_in().await;

    assert_eq!(scene.browser.text_of("h1").await, "Check your email");
    scene.record("new-code-form").await;
    let second = scene.code(2).await;
    scene.pass_with(&second).await;

    scene.end().await;
}

#[tokio::test]
async fn a_phone_sized_window_shows_every_page_without_sideways_scrolling() {
    let mut scene = Scene::start(
        "phone",
        Setup {
            window: PHONE,
            ..Setup::default()
        },
    )
    .await;

    scene.open_the_form().await;
    let width = scene.browser.eval("return window.innerWidth;").await;
    assert_eq!(width.as_u64(), Some(320), "a 320 px wide window");
    scene.every_page_fits_the_width().await;

    scene.end().await;
}

#[tokio::test]
async fn a_french_browser_gets_the_page_in_french_and_the_switch_changes_it() {
    let mut scene = Scene::start(
        "french",
        Setup {
            languages: "fr-FR,fr,en",
            ..Setup::default()
        },
    )
    .await;

    scene.open_the_form().await;
    assert_eq!(scene.browser.text_of("h1").await, "Connexion à Acme");
    assert_eq!(
        scene.browser.attr_of("html", "lang").await.as_deref(),
        Some("fr")
    );
    scene.record("sign-in-form").await;
    scene.sign_in().await;

    assert_eq!(scene.browser.text_of("h1").await, "Consultez vos e-mails");
    let code = scene.code(1).await;
    // The email is in the page's language: the page sends it with the login.
    let email = scene.emails().await.remove(0);
    assert!(
        email.starts_with(&format!("Votre code de connexion est {code}")),
        "{email}"
    );
    scene.enter_a_wrong_code(&code).await;
    assert_eq!(
        scene.problem().await,
        "Ce code n’est pas le bon. Il vous reste 4 essais."
    );
    scene.record("incorrect-code").await;

    // The switch keeps the code page (the challenge travels in its hidden fields).
    scene
        .browser
        .click_and_wait("form.switch button[value=en]")
        .await;
    assert_eq!(scene.browser.text_of("h1").await, "Check your email");
    assert_eq!(
        scene.browser.attr_of("html", "lang").await.as_deref(),
        Some("en")
    );
    scene.record("switched-to-english").await;
    scene.enter_code(&code).await;
    scene.assert_signed_in().await;

    scene.end().await;
}

#[tokio::test]
async fn an_expired_code_says_so_and_signing_in_again_sends_a_new_one() {
    // Long enough to read the second code and type it, short enough to outwait the first.
    let code_ttl = std::time::Duration::from_secs(8);
    let mut scene = Scene::start(
        "expired-code",
        Setup {
            options: Options {
                code_ttl,
                ..Options::default()
            },
            ..Setup::default()
        },
    )
    .await;

    scene.open_the_form().await;
    scene.sign_in().await;
    let validity = scene.browser.text_of("#validity").await;
    assert!(
        validity.starts_with("It works for 1 minute, until "),
        "{validity}"
    );
    let first = scene.code(1).await;
    tokio::time::sleep(code_ttl + std::time::Duration::from_secs(1)).await;
    scene.enter_code(&first).await;

    assert_eq!(
        scene.problem().await,
        "This code has expired. To get a new one, sign in again."
    );
    assert_eq!(scene.focused_id().await.as_deref(), Some("problem"));
    scene.record("expired").await;
    scene.sign_in().await;
    let second = scene.code(2).await;
    assert_ne!(second, first, "a new code");
    scene.pass_with(&second).await;

    scene.end().await;
}

#[tokio::test]
async fn at_200_percent_zoom_every_page_reflows_to_the_width() {
    let mut scene = Scene::start(
        "zoom-200",
        Setup {
            window: LAPTOP_AT_200_PERCENT,
            ..Setup::default()
        },
    )
    .await;

    scene.open_the_form().await;
    let zoom = scene
        .browser
        .eval("return [window.devicePixelRatio, window.innerWidth];")
        .await;
    assert_eq!(zoom[0].as_f64(), Some(2.0), "drawn at 200%");
    assert_eq!(zoom[1].as_u64(), Some(640), "half of 1280 px to lay out in");
    scene.every_page_fits_the_width().await;

    scene.end().await;
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_read_the_same_and_keep_the_address() {
    let mut scene = Scene::start("wrong-password", Setup::default()).await;

    let mut problems = Vec::new();
    for address in [scene.email.clone(), unique_email("nobody")] {
        scene.open_the_form().await;
        scene.browser.type_into("email", &address).await;
        scene
            .browser
            .type_into("password", "not the password")
            .await;
        scene.browser.press_enter_in("password").await;
        assert_eq!(
            scene.browser.attr_of("#email", "value").await.as_deref(),
            Some(address.as_str())
        );
        assert_eq!(scene.focused_id().await.as_deref(), Some("problem"));
        problems.push(scene.problem().await);
    }
    scene.record("wrong-password").await;
    assert_eq!(
        problems[0],
        "The email address or password is not correct. Check them and try again."
    );
    assert_eq!(
        problems[0], problems[1],
        "the page tells no one who has an account"
    );

    scene.end().await;
}

#[tokio::test]
async fn the_keyboard_alone_goes_through_the_form_in_reading_order() {
    let mut scene = Scene::start(
        "keyboard",
        Setup {
            with_account: false,
            ..Setup::default()
        },
    )
    .await;

    scene.open_the_form().await;
    assert_eq!(scene.focused_id().await.as_deref(), Some("email"));
    let tab = fantoccini::key::Key::Tab.to_string();
    scene.browser.type_into("email", &tab).await;
    assert_eq!(scene.focused_id().await.as_deref(), Some("password"));
    scene.browser.type_into("password", &tab).await;
    let focused = scene.browser.client.active_element().await.unwrap();
    assert_eq!(
        focused.attr("type").await.unwrap().as_deref(),
        Some("submit")
    );
    scene.record("focus-on-sign-in").await;

    scene.end().await;
}

#[tokio::test]
async fn with_login_intake_down_the_page_says_to_try_again_later() {
    let mut scene = Scene::start(
        "unavailable",
        Setup {
            options: Options {
                intake_down: true,
                ..Options::default()
            },
            // login-intake is not there to create one.
            with_account: false,
            ..Setup::default()
        },
    )
    .await;

    scene.open_the_form().await;
    scene.sign_in().await;
    assert_eq!(
        scene.problem().await,
        "Signing in is not possible right now. Try again in a few minutes."
    );
    assert_eq!(
        scene.browser.attr_of("#email", "value").await.as_deref(),
        Some(scene.email.as_str())
    );
    scene.record("unavailable").await;

    scene.end().await;
}

#[tokio::test]
async fn past_the_rate_limit_the_page_says_how_long_to_wait() {
    let mut scene = Scene::start(
        "rate-limited",
        Setup {
            options: Options {
                logins_per_ip: Some(1),
                ..Options::default()
            },
            ..Setup::default()
        },
    )
    .await;

    scene.open_the_form().await;
    scene.sign_in().await;
    assert_eq!(scene.browser.text_of("h1").await, "Check your email");
    scene.open_the_form().await;
    scene.sign_in().await;
    let problem = scene.problem().await;
    assert!(
        problem.starts_with("Too many sign-in attempts. Wait ")
            && problem.ends_with(" minutes, then try again."),
        "{problem}"
    );
    scene.record("rate-limited").await;

    scene.end().await;
}

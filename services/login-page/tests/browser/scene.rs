//! One test's scene and the steps a person takes in it: the system started, a user of it
//! (when the test wants one) and a browser opened on it, so each test reads as its scenario.

use crate::support::browser::{Browser, Window, DESKTOP};
use crate::support::system::{Options, System, RETURN_URL};
use crate::support::{unique_email, AT_A_TIME, PASSWORD};

/// How a test's scene is set up; `Setup::default()` is the common one.
pub struct Setup {
    pub options: Options,
    pub window: Window,
    /// The browser's `Accept-Language`.
    pub languages: &'static str,
    /// Whether the test's address gets an account; without one it is still unique.
    pub with_account: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            options: Options::default(),
            window: DESKTOP,
            languages: "en",
            with_account: true,
        }
    }
}

pub struct Scene {
    pub system: System,
    pub browser: Browser,
    /// The test user's address, named after the test.
    pub email: String,
    /// The account's user id (None: `Setup::with_account` was false).
    pub user_id: Option<String>,
    // Held until the scene ends: the turn is given back after the system has stopped.
    _turn: tokio::sync::SemaphorePermit<'static>,
}

impl Scene {
    /// The system, the user and a new browser for the test `test` (its screenshots go to
    /// `target/login-page-screenshots/<test>/`).
    pub async fn start(test: &str, setup: Setup) -> Scene {
        let turn = AT_A_TIME.acquire().await.unwrap();
        let system = System::start(setup.options).await;
        let email = unique_email(test);
        let user_id = if setup.with_account {
            Some(system.create_user(&email).await)
        } else {
            None
        };
        let browser = Browser::open(test, setup.window, setup.languages).await;
        Scene {
            system,
            browser,
            email,
            user_id,
            _turn: turn,
        }
    }

    /// The browser closed and the system shut down, in that order.
    pub async fn end(self) {
        self.browser.close().await;
        self.system.shut_down().await;
    }

    pub async fn open_the_form(&self) {
        self.browser.goto(&self.system.page_url).await;
    }

    /// From the sign-in form: the email (unless the form kept it), the password, then Enter.
    pub async fn sign_in(&self) {
        let typed = self
            .browser
            .attr_of("#email", "value")
            .await
            .unwrap_or_default();
        if typed.is_empty() {
            self.browser.type_into("email", &self.email).await;
        } else {
            assert_eq!(typed, self.email, "the form kept another address");
        }
        self.browser.type_into("password", PASSWORD).await;
        self.browser.press_enter_in("password").await;
    }

    /// The code in the `nth` email to the user (1 is the first).
    pub async fn code(&self, nth: usize) -> String {
        self.system.inbox.code(&self.email, nth).await
    }

    /// The text of every email to the user so far, oldest first.
    pub async fn emails(&self) -> Vec<String> {
        self.system.inbox.texts_to(&self.email).await
    }

    /// The form opened, signed in with the right password: the code it sends.
    pub async fn sign_in_for_a_code(&self) -> String {
        self.open_the_form().await;
        self.sign_in().await;
        self.code(1).await
    }

    pub async fn enter_code(&self, code: &str) {
        self.browser.type_into("code", code).await;
        self.browser.press_enter_in("code").await;
    }

    /// A guess that is not `code`.
    pub async fn enter_a_wrong_code(&self, code: &str) {
        self.enter_code(wrong_code(code)).await;
    }

    /// A code that signs in: the signed-in page checked, then recorded as `signed-in`.
    pub async fn pass_with(&mut self, code: &str) {
        self.enter_code(code).await;
        self.assert_signed_in().await;
        self.record("signed-in").await;
    }

    pub async fn record(&mut self, step: &str) {
        self.browser.record_step(step).await;
    }

    pub async fn problem(&self) -> String {
        self.browser.text_of("#problem p").await
    }

    pub async fn focused_id(&self) -> Option<String> {
        self.browser.focused_id().await
    }

    pub async fn assert_signed_in(&self) {
        assert_eq!(
            self.browser.text_of("#signed-in-to").await,
            "You are signed in to Dashboard."
        );
        let href = self.browser.attr_of("#continue", "href").await.unwrap();
        let attempt_id = href
            .strip_prefix(&format!("{RETURN_URL}?attempt_id="))
            .unwrap_or_else(|| panic!("{href} is not the return URL with the attempt id"));
        uuid::Uuid::parse_str(attempt_id).unwrap();
    }

    /// The page fits the window's width: nothing to scroll sideways.
    pub async fn fits_the_width(&self) {
        let sizes = self
            .browser
            .eval("return [document.documentElement.scrollWidth, window.innerWidth];")
            .await;
        let (content, window) = (sizes[0].as_u64().unwrap(), sizes[1].as_u64().unwrap());
        assert!(
            content <= window,
            "{content} px of content in a {window} px window"
        );
    }

    /// From the open form: the form, a wrong code's page and the signed-in page, each
    /// checked for fitting the width and recorded.
    pub async fn every_page_fits_the_width(&mut self) {
        self.fits_the_width().await;
        self.record("sign-in-form").await;
        self.sign_in().await;
        let code = self.code(1).await;
        self.enter_a_wrong_code(&code).await;
        self.fits_the_width().await;
        self.record("incorrect-code").await;
        self.enter_code(&code).await;
        self.assert_signed_in().await;
        self.fits_the_width().await;
        self.record("signed-in").await;
    }
}

/// A code that is not `code`: a guaranteed wrong guess.
fn wrong_code(code: &str) -> &'static str {
    if code == "000000" {
        "000001"
    } else {
        "000000"
    }
}

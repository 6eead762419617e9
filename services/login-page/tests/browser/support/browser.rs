//! A real Chromium, headless, driven over WebDriver by Debian's `chromedriver` (both
//! installed by `scripts/install-tools`). Each browser has a profile of its own, so its
//! cookies are its own: a test that wants "the same browser again" keeps its `Browser`.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// Where `scripts/install-tools` put the browser, its driver and axe-core (its `--print`
/// lines, read once): the tests use what the project's own script installs, nothing else.
fn tool(name: &str) -> String {
    static TOOLS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    let tools = TOOLS.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/install-tools");
        let output = std::process::Command::new(script)
            .arg("--print")
            .stderr(Stdio::inherit())
            .output()
            .expect("scripts/install-tools runs");
        assert!(
            output.status.success(),
            "scripts/install-tools --print failed"
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect()
    });
    let path = tools
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.clone())
        .unwrap_or_else(|| panic!("scripts/install-tools --print names no {name}"));
    assert!(
        std::path::Path::new(&path).exists(),
        "{name}={path} does not exist"
    );
    path
}

/// axe-core's source, injected into each page checked.
fn axe_core() -> &'static str {
    static SOURCE: OnceLock<String> = OnceLock::new();
    SOURCE.get_or_init(|| std::fs::read_to_string(tool("AXE_CORE_JS")).expect("axe-core reads"))
}

pub struct Browser {
    pub client: Client,
    // Dropped in this order: the driver, then the browser it started, found by its profile.
    _driver: Driver,
    _profile: Profile,
    /// Where this test's screenshots go: `target/login-page-screenshots/<test>/`.
    shots: PathBuf,
    taken: usize,
}

/// The chromedriver process, ended with the test even when the test fails (its Chromium
/// ends with it).
struct Driver(std::process::Child);

/// The browser's own profile directory. Dropping it ends the browser started with it, which
/// outlives its killed driver (a test that failed before `close`), and removes the
/// directory. The browser is found by the directory's unique name in its command line: no
/// other process is touched.
struct Profile(PathBuf);

impl Drop for Profile {
    fn drop(&mut self) {
        let flag = format!("--user-data-dir={}", self.0.display());
        let processes = std::fs::read_dir("/proc").into_iter().flatten().flatten();
        let mut browsers = Vec::new();
        for process in processes {
            let Ok(cmdline) = std::fs::read(process.path().join("cmdline")) else {
                continue;
            };
            let started_with_this_profile = cmdline
                .split(|byte| *byte == 0)
                .any(|arg| arg == flag.as_bytes());
            if started_with_this_profile {
                let _ = std::process::Command::new("kill")
                    .arg("-TERM")
                    .arg(process.file_name())
                    .status();
                browsers.push(process.path());
            }
        }
        // A browser that is shutting down still writes to its profile: remove it after.
        let deadline = Instant::now() + Duration::from_secs(5);
        while browsers.iter().any(|process| process.exists()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A browser window, its size in CSS pixels.
pub struct Window {
    pub width: u32,
    pub height: u32,
    /// Screen pixels per CSS pixel.
    pub zoom: u32,
}

pub const DESKTOP: Window = Window {
    width: 1024,
    height: 768,
    zoom: 1,
};
/// The narrowest phone screen the page is made for.
pub const PHONE: Window = Window {
    width: 320,
    height: 640,
    zoom: 1,
};
/// A 1280 x 800 laptop screen at 200% zoom: what the page lays out in is half as wide and
/// high, each CSS pixel drawn as 2 x 2.
pub const LAPTOP_AT_200_PERCENT: Window = Window {
    width: 640,
    height: 400,
    zoom: 2,
};

impl Browser {
    /// A new browser (a new profile: no cookies) whose `Accept-Language` is `languages`.
    pub async fn open(test: &str, window: Window, languages: &str) -> Browser {
        let port = mfa_testkit::net::free_port().unwrap();
        let driver = Driver(
            std::process::Command::new(tool("CHROMEDRIVER_BIN"))
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver starts"),
        );
        mfa_testkit::net::wait_for_port(port, Duration::from_secs(20), "chromedriver")
            .await
            .unwrap();
        let profile = Profile(std::env::temp_dir().join(format!(
            "login-page-chromium-{}",
            uuid::Uuid::new_v4().simple()
        )));
        // This machine has no network but the loopback: without these, Chromium stalls on
        // its own background fetches (updates, sync, QUIC probes) before the first page.
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-quic".to_owned(),
            format!("--user-data-dir={}", profile.0.display()),
            format!("--window-size={},{}", window.width, window.height),
            format!("--force-device-scale-factor={}", window.zoom),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": tool("CHROMIUM_BIN"),
                "args": args,
                "prefs": { "intl.accept_languages": languages },
            }),
        );
        let client = ClientBuilder::native()
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session starts");
        client
            .set_window_size(window.width, window.height)
            .await
            .expect("the window takes its size");
        let shots = screenshots_dir().join(test);
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).unwrap();
        Browser {
            client,
            _driver: driver,
            _profile: profile,
            shots,
            taken: 0,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// Types into the field with this id (after what is in it).
    pub async fn type_into(&self, id: &str, text: &str) {
        self.client
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("no #{id}: {e}"))
            .send_keys(text)
            .await
            .unwrap();
    }

    /// Presses Enter in the field with this id, as a keyboard user submits a form, and
    /// waits for the page that answers it.
    pub async fn press_enter_in(&self, id: &str) {
        let old = self.client.find(Locator::Css("html")).await.unwrap();
        self.type_into(id, &fantoccini::key::Key::Enter.to_string())
            .await;
        self.wait_until_replaced(old).await;
    }

    /// Clicks the element the selector finds and waits for the next page.
    pub async fn click_and_wait(&self, css: &str) {
        let old = self.client.find(Locator::Css("html")).await.unwrap();
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .click()
            .await
            .unwrap();
        self.wait_until_replaced(old).await;
    }

    /// Waits until the page `old` belongs to is gone and the next one has loaded.
    async fn wait_until_replaced(&self, old: fantoccini::elements::Element) {
        let started = Instant::now();
        while old.tag_name().await.is_ok() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no new page within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.client
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css("main"))
            .await
            .expect("the next page loads");
    }

    pub async fn text_of(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .text()
            .await
            .unwrap()
    }

    pub async fn exists(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .unwrap()
            .is_empty()
    }

    pub async fn attr_of(&self, css: &str, attribute: &str) -> Option<String> {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .attr(attribute)
            .await
            .unwrap()
    }

    /// The id of the element that has the keyboard focus.
    pub async fn focused_id(&self) -> Option<String> {
        self.client
            .active_element()
            .await
            .unwrap()
            .attr("id")
            .await
            .unwrap()
    }

    /// Runs a script in the page and returns its value.
    pub async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// One step a person sees: its screenshot, numbered in the order taken
    /// (`target/login-page-screenshots/<test>/<n>-<step>.png`), and an accessibility check
    /// of the page by axe-core, which fails the test on any serious or critical violation.
    pub async fn record_step(&mut self, step: &str) {
        self.taken += 1;
        let png = self.client.screenshot().await.unwrap();
        let path = self.shots.join(format!("{:02}-{step}.png", self.taken));
        std::fs::write(&path, png).unwrap();
        self.assert_accessible(step).await;
    }

    /// axe-core run in the page (through WebDriver, which the page's CSP does not stop:
    /// the page itself allows no script).
    async fn assert_accessible(&self, step: &str) {
        let script = format!(
            "{}\nreturn axe.run(document).then(result => result.violations.map(v => \
             ({{id: v.id, impact: v.impact, help: v.help, \
             nodes: v.nodes.map(n => n.target.join(' '))}})));",
            axe_core()
        );
        let violations = self.client.execute(&script, vec![]).await.unwrap();
        let violations = violations.as_array().expect("axe-core lists violations");
        let blocking: Vec<&Value> = violations
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .collect();
        for minor in violations.iter().filter(|v| !blocking.contains(v)) {
            eprintln!("{step}: axe-core, {}: {minor}", minor["impact"]);
        }
        assert!(blocking.is_empty(), "{step}: axe-core finds {blocking:#?}");
    }

    pub async fn close(self) {
        let _ = self.client.clone().close().await;
        // The driver, then anything of the browser still running, then its profile.
        drop(self);
    }
}

/// `target/login-page-screenshots`, in the workspace's target directory (or
/// `CARGO_TARGET_DIR`).
fn screenshots_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")))
        .join("login-page-screenshots")
}

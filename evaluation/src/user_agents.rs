//! Real user-agent strings, with versions that move over time as real ones do.
//!
//! The templates are the strings current browsers send (Chrome, Edge and Safari freeze the
//! OS part: "Windows NT 10.0", "Intel Mac OS X 10_15_7", "Android 10; K"), so only the version
//! changes on an update: exactly the case the risk engine must not mistake for a new device.
//! Release dates follow each vendor's cadence (Chrome and Firefox every four weeks, Edge a few
//! days after Chrome, Safari and iOS with the yearly OS release and point releases between).

use chrono::{DateTime, Duration, NaiveDate, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Browser {
    Chrome,
    Edge,
    Firefox,
    Safari,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Os {
    Windows,
    MacOs,
    Linux,
    Ios,
    Android,
}

/// Android phones: (model, build id per Android major 14, 15, 16).
pub const ANDROID_MODELS: &[(&str, [&str; 3])] = &[
    (
        "Pixel 8",
        ["AP2A.240805.005", "AP4A.250205.002", "BP2A.250605.031"],
    ),
    (
        "Pixel 9",
        ["AD1A.240530.047", "AP4A.250205.002", "BP2A.250605.031"],
    ),
    (
        "SM-S921B",
        ["UP1A.231005.007", "AP3A.240905.015", "BP2A.250605.031"],
    ),
    (
        "SM-A546B",
        ["UP1A.231005.007", "AP3A.240905.015", "BP2A.250605.031"],
    ),
    (
        "2311DRK48G",
        ["UKQ1.231003.002", "AQ3A.240912.001", "BP2A.250605.031"],
    ),
];

#[expect(
    clippy::expect_used,
    reason = "the release dates in the tables are valid dates"
)]
fn date(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(y, m, d)
        .expect("a valid date")
        .and_hms_opt(17, 0, 0)
        .expect("a valid time")
        .and_utc()
}

/// Releases every `cadence_days` from `anchor_version` at `anchor`.
fn train(at: DateTime<Utc>, anchor: DateTime<Utc>, anchor_version: i64, cadence_days: i64) -> i64 {
    anchor_version + (at - anchor).num_days().div_euclid(cadence_days)
}

/// Chrome's major version installed at `at` (141 shipped on 2025-09-30).
pub fn chrome_major(at: DateTime<Utc>) -> i64 {
    train(at, date(2025, 9, 30), 141, 28)
}

/// Edge follows Chromium a few days behind.
pub fn edge_major(at: DateTime<Utc>) -> i64 {
    chrome_major(at - Duration::days(4))
}

/// Firefox 144 shipped on 2025-10-14.
pub fn firefox_major(at: DateTime<Utc>) -> i64 {
    train(at, date(2025, 10, 14), 144, 28)
}

/// Apple's version (Safari and iOS share it since 26): 26.0 on 2025-09-15, then a point
/// release about every seven weeks; before that the 18.x line.
pub fn apple_version(at: DateTime<Utc>) -> (i64, i64) {
    let launch = date(2025, 9, 15);
    if at >= launch {
        (26, (at - launch).num_days() / 49)
    } else {
        (18, (6 - (launch - at).num_days() / 49).max(0))
    }
}

/// The Workspace desktop app's version: a minor release every four weeks.
pub fn workspace_version(at: DateTime<Utc>) -> String {
    let minor = train(at, date(2025, 9, 1), 2, 28);
    format!("5.{minor}.1")
}

/// The mobile apps' version: a minor release every three weeks.
pub fn mobile_app_version(at: DateTime<Utc>) -> String {
    let minor = train(at, date(2025, 9, 1), 4, 21);
    format!("3.{minor}.0")
}

/// A browser's User-Agent header at `at`, `lag_days` behind the release train (users restart
/// their browser, and staged roll-outs take days).
pub fn browser_ua(browser: Browser, os: Os, at: DateTime<Utc>, lag_days: i64) -> String {
    let at = at - Duration::days(lag_days);
    let chrome_like = |v: i64, suffix: &str| {
        match os {
        Os::Windows => format!("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36{suffix}"),
        Os::MacOs => format!("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36{suffix}"),
        Os::Linux => format!("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36{suffix}"),
        Os::Android => format!("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Mobile Safari/537.36{suffix}"),
        Os::Ios => format!("Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/{v}.0.0.0 Mobile/15E148 Safari/604.1"),
    }
    };
    match browser {
        Browser::Chrome => chrome_like(chrome_major(at), ""),
        Browser::Edge => {
            let v = edge_major(at);
            chrome_like(v, &format!(" Edg/{v}.0.0.0"))
        }
        Browser::Firefox => {
            let v = firefox_major(at);
            let platform = match os {
                Os::Windows => "Windows NT 10.0; Win64; x64".to_owned(),
                Os::MacOs => "Macintosh; Intel Mac OS X 10.15".to_owned(),
                Os::Linux => "X11; Ubuntu; Linux x86_64".to_owned(),
                Os::Android => "Android 14; Mobile".to_owned(),
                Os::Ios => "iPhone; CPU iPhone OS 18_6 like Mac OS X".to_owned(),
            };
            format!("Mozilla/5.0 ({platform}; rv:{v}.0) Gecko/20100101 Firefox/{v}.0")
        }
        Browser::Safari => {
            let (major, minor) = apple_version(at);
            match os {
                Os::Ios => {
                    // iOS 26 froze the OS token at 18_6; before it, it tracked the release.
                    let os_token = if major >= 26 {
                        "18_6".to_owned()
                    } else {
                        format!("{major}_{minor}")
                    };
                    format!("Mozilla/5.0 (iPhone; CPU iPhone OS {os_token} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{major}.{minor} Mobile/15E148 Safari/604.1")
                }
                _ => format!("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{major}.{minor} Safari/605.1.15"),
            }
        }
    }
}

/// The Workspace desktop app (Electron) at `at`.
pub fn workspace_ua(os: Os, at: DateTime<Utc>, lag_days: i64) -> String {
    let at = at - Duration::days(lag_days);
    let platform = match os {
        Os::MacOs => "Macintosh; Intel Mac OS X 10_15_7",
        Os::Linux => "X11; Linux x86_64",
        _ => "Windows NT 10.0; Win64; x64",
    };
    // Each app minor bundles a newer Electron.
    let electron = 36 + train(at, date(2025, 9, 1), 2, 28) / 2;
    format!(
        "Workspace/{} ({platform}) Electron/{electron}.2.0",
        workspace_version(at)
    )
}

/// The iOS app: app version from the train, iOS version from the phone.
pub fn ios_app_ua(ios: (i64, i64), at: DateTime<Utc>, lag_days: i64) -> String {
    let app = mobile_app_version(at - Duration::days(lag_days));
    format!(
        "AdaptiveMfaApp/{app} (iPhone; iOS {}.{}; Scale/3.00)",
        ios.0, ios.1
    )
}

/// The Android app (okhttp): app version from the train, model and OS from the phone.
pub fn android_app_ua(model: usize, android: u32, at: DateTime<Utc>, lag_days: i64) -> String {
    let app = mobile_app_version(at - Duration::days(lag_days));
    let (name, builds) = ANDROID_MODELS[model];
    let build = builds[(android.clamp(14, 16) - 14) as usize];
    format!("AdaptiveMfaApp/{app} (Linux; Android {android}; {name} Build/{build}) okhttp/4.12.0")
}

/// Browsers and OSes that attack tools imitate, with weights: the common desktop ones first.
pub const COMMON_BROWSERS: &[(Browser, Os, u32)] = &[
    (Browser::Chrome, Os::Windows, 50),
    (Browser::Edge, Os::Windows, 15),
    (Browser::Chrome, Os::MacOs, 12),
    (Browser::Safari, Os::MacOs, 10),
    (Browser::Firefox, Os::Windows, 6),
];

/// Everything a naive attacker's tool may claim to be, including odd combinations.
pub const ANY_BROWSERS: &[(Browser, Os, u32)] = &[
    (Browser::Chrome, Os::Windows, 30),
    (Browser::Chrome, Os::Linux, 15),
    (Browser::Firefox, Os::Linux, 10),
    (Browser::Firefox, Os::Windows, 8),
    (Browser::Chrome, Os::MacOs, 8),
    (Browser::Edge, Os::Windows, 6),
    (Browser::Safari, Os::MacOs, 5),
    (Browser::Chrome, Os::Android, 8),
    (Browser::Safari, Os::Ios, 5),
    (Browser::Firefox, Os::MacOs, 5),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_update_changes_only_the_version() {
        let before = browser_ua(Browser::Chrome, Os::Windows, date(2025, 10, 1), 0);
        let after = browser_ua(Browser::Chrome, Os::Windows, date(2025, 11, 1), 0);
        assert!(before.contains("Chrome/141.0.0.0"), "{before}");
        assert!(after.contains("Chrome/142.0.0.0"), "{after}");
        assert_eq!(
            before.replace("141.0.0.0", "X"),
            after.replace("142.0.0.0", "X")
        );
    }

    #[test]
    fn versions_are_real_ones_for_late_2025() {
        let at = date(2025, 10, 20);
        assert_eq!(firefox_major(at), 144);
        assert_eq!(apple_version(at), (26, 0));
        assert_eq!(edge_major(date(2025, 10, 2)), 140);
        assert!(browser_ua(Browser::Safari, Os::MacOs, at, 0).contains("Version/26.0 Safari"));
        assert_eq!(
            android_app_ua(0, 15, at, 0),
            format!(
                "AdaptiveMfaApp/{} (Linux; Android 15; Pixel 8 Build/AP4A.250205.002) okhttp/4.12.0",
                mobile_app_version(at)
            )
        );
    }
}

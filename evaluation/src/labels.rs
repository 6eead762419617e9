//! The ground truth of each generated login: who made it, and what about it is new or unusual
//! for a legitimate user. The risk engine never sees these; the report scores against them.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttackKind {
    /// Anywhere in the world, often a hosting range, any browser.
    Naive,
    /// The victim's country, a common browser.
    Targeted,
    /// The victim's city and ISP, the victim's exact user agent.
    VeryTargeted,
    /// On the victim's own network (a housemate, a hijacked router): the victim's exact home
    /// address and the victim's app's user agent, with a device id of its own (or none).
    HomeNetwork,
    /// Many accounts from one address, mostly wrong passwords.
    Stuffing,
    /// A few passwords across many accounts, slowly.
    Spraying,
}

impl AttackKind {
    pub const ALL: [AttackKind; 6] = [
        AttackKind::Naive,
        AttackKind::Targeted,
        AttackKind::VeryTargeted,
        AttackKind::HomeNetwork,
        AttackKind::Stuffing,
        AttackKind::Spraying,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AttackKind::Naive => "naive",
            AttackKind::Targeted => "targeted",
            AttackKind::VeryTargeted => "very_targeted",
            AttackKind::HomeNetwork => "home_network",
            AttackKind::Stuffing => "stuffing",
            AttackKind::Spraying => "spraying",
        }
    }
}

/// What made a legitimate login differ from the user's routine. Declared in priority order:
/// a login's "primary cause" is the first one it carries, so each challenged login is counted
/// once under the most specific explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// First login from a new phone (new app install: new device id, newer OS).
    NewPhone,
    /// First login of the phone app after it was deleted and installed again on the same
    /// phone: a new app device id, same phone and OS.
    AppReinstall,
    /// First login of the Workspace desktop app, installed during the period by a user who
    /// had only used the Dashboard in the computer's browser.
    DesktopAppInstalled,
    /// First login from a computer the user got during the period.
    NewComputer,
    /// First login after the browser's cookies were cleared: a new device id.
    ClearedCookies,
    /// A private window: no device id.
    PrivateWindow,
    /// The user is away on a trip (hotel network, roaming, another city or country).
    Travel,
    /// The first login from one of the user's devices (a second computer, the phone...).
    FirstUseOfDevice,
    /// The first login from the home network after the ISP gave it a new address.
    IspChurn,
    /// A café's or friend's Wi-Fi in the user's city.
    PublicWifi,
    /// A laptop on the phone's hotspot: a carrier address.
    Hotspot,
    /// The phone's operating system was updated since its last login (new UA).
    OsUpdate,
    /// The browser's major version changed since its last login (UA differs in version only).
    BrowserUpdate,
    /// The app's version changed since its last login.
    AppUpdate,
    /// A phone on the carrier's network (a new CGNAT address nearly every time).
    MobileNetwork,
    /// At the office, on its network.
    Office,
    /// At home, on the home network.
    Home,
    /// A mistyped password (the attempt fails; the user retries).
    Typo,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::NewPhone => "new_phone",
            Cause::AppReinstall => "app_reinstall",
            Cause::DesktopAppInstalled => "desktop_app_installed",
            Cause::NewComputer => "new_computer",
            Cause::ClearedCookies => "cleared_cookies",
            Cause::PrivateWindow => "private_window",
            Cause::Travel => "travel",
            Cause::FirstUseOfDevice => "first_use_of_device",
            Cause::IspChurn => "isp_churn",
            Cause::PublicWifi => "public_wifi",
            Cause::Hotspot => "hotspot",
            Cause::OsUpdate => "os_update",
            Cause::BrowserUpdate => "browser_update",
            Cause::AppUpdate => "app_update",
            Cause::MobileNetwork => "mobile_network",
            Cause::Office => "office",
            Cause::Home => "home",
            Cause::Typo => "typo",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "actor", rename_all = "snake_case")]
pub enum Actor {
    /// The account's owner; `user` indexes the population.
    Legit { user: u32 },
    /// An attacker; `victim` is the targeted account, absent for unknown emails.
    Attacker {
        kind: AttackKind,
        victim: Option<u32>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Label {
    #[serde(flatten)]
    pub actor: Actor,
    /// Whether the password was right (`primary_factor: succeeded`).
    pub password_ok: bool,
    /// Sorted, each at most once.
    pub causes: Vec<Cause>,
}

impl Label {
    pub fn is_legit(&self) -> bool {
        matches!(self.actor, Actor::Legit { .. })
    }

    pub fn attack_kind(&self) -> Option<AttackKind> {
        match self.actor {
            Actor::Attacker { kind, .. } => Some(kind),
            Actor::Legit { .. } => None,
        }
    }

    /// The most specific cause (see `Cause`'s order).
    pub fn primary_cause(&self) -> Option<Cause> {
        self.causes.first().copied()
    }
}

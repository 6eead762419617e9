//! The statistical score of Freeman et al., "Who Are You? A Statistical Approach to
//! Measuring User Authenticity" (NDSS 2016), in the form Wiefling et al. used at scale.
//!
//! For a login with feature values x = (x_1 .. x_d) and a user u:
//!
//! ```text
//!            d   p(x_k)          p(u | attack)     d   p(x_k)            N
//!   S_u(x) = ∏  ─────────────  · ──────────────  =  ∏  ─────────────  · ─────────
//!           k=1 p(x_k | u, L)    p(u | legit)      k=1 p(x_k | u, L)    |U| · n_u
//! ```
//!
//! - p(x_k) is the value's likelihood among all approved logins (N of them, by |U| users),
//!   p(x_k | u, L) its likelihood among the user's own approved logins (n_u of them, in the
//!   history window); every user is assumed equally likely to be attacked (1/|U|) and the
//!   user logs in with probability n_u / N. A high S means "this looks like someone else".
//! - Hierarchy: a feature is a list of levels, finest first (IP -> /24 prefix -> ASN ->
//!   country; client -> browser -> OS -> device type), and its likelihood is the weighted sum
//!   of its levels' likelihoods, p(x) = Σ_j w_j · p(x^j). An address never seen before still
//!   counts for its ASN and country.
//! - Smoothing of the global likelihoods (Freeman's estimate of unseen values): a level's
//!   value seen c times among N logins gets p = max(c, 1) / (N + U_j), where U_j, the number
//!   of values still unseen at level j, is estimated as 1 + the number of distinct values
//!   known at every coarser level (each known ASN may hold an address not seen yet, ...).
//!   This is c/N · (1 - U_j/(N + U_j)) of the reference implementation for c > 0 and its
//!   1/(N + U_j) for c = 0.
//! - The user's likelihoods are not smoothed: p(x^j | u) = c_u / n_u. When the value is new
//!   to the user at every level, that sum is 0; as in the reference implementation the
//!   user's likelihood is then taken as a quarter of the global one (the ratio is 4), since
//!   smoothing both sides would make an entirely new value look harmless.
//! - Levels without a value (no ASN database, say) are left out and the weights of the rest
//!   renormalised.
//! - Cold start (our addition): the global population is padded with N_0 pseudo-logins of
//!   values nobody has, p = max(c, 1) / (N + N_0 + U_j). In a new deployment with a handful
//!   of users the global likelihoods would otherwise equal the user's own and every login
//!   would look "as likely anybody"; once N >> N_0 the padding no longer matters.
//!
//! The score is reported as log10 S, so that 0 means "as likely the user as anybody".

use super::features::{Features, Level};

/// One feature: its levels, finest first, with their weights (summing to 1).
pub type Hierarchy = &'static [(Level, f64)];

/// The model's features.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spec {
    pub features: &'static [(&'static str, Hierarchy)],
    /// N_0, the cold-start padding of the global population.
    pub prior_logins: f64,
}

/// Our model: the address, the client (versions left out: an update is not a new client)
/// and the device id.
pub const FULL: Spec = Spec {
    features: &[
        (
            "ip",
            &[
                (Level::Ip, 0.5),
                (Level::Prefix, 0.2),
                (Level::Asn, 0.2),
                (Level::Country, 0.1),
            ],
        ),
        (
            "user_agent",
            &[
                (Level::Client, 0.55),
                (Level::Browser, 0.25),
                (Level::Os, 0.15),
                (Level::DeviceType, 0.05),
            ],
        ),
        ("device", &[(Level::Device, 1.0)]),
    ],
    prior_logins: 1000.0,
};

/// The model as the published studies used it: IP and user agent only, with the weights of
/// Wiefling et al.'s reference implementation.
pub const PLAIN: Spec = Spec {
    features: &[
        (
            "ip",
            &[(Level::Ip, 0.6), (Level::Asn, 0.3), (Level::Country, 0.1)],
        ),
        (
            "user_agent",
            &[
                (Level::UserAgent, 0.5386653840551359),
                (Level::BrowserVersion, 0.2680451498625666),
                (Level::OsVersion, 0.18818295100109536),
                (Level::DeviceType, 0.0051065150812021525),
            ],
        ),
    ],
    prior_logins: 0.0,
};

/// A number per level (0 where nothing was counted): a flat array, as the model reads
/// a dozen of them for every login.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PerLevel([u64; Level::ALL.len()]);

impl PerLevel {
    pub fn get(&self, level: Level) -> u64 {
        self.0[level.index()]
    }

    pub fn set(&mut self, level: Level, value: u64) {
        self.0[level.index()] = value;
    }

    pub fn add(&mut self, level: Level, value: u64) {
        self.0[level.index()] += value;
    }
}

impl FromIterator<(Level, u64)> for PerLevel {
    fn from_iter<I: IntoIterator<Item = (Level, u64)>>(iter: I) -> Self {
        let mut per_level = Self::default();
        for (level, value) in iter {
            per_level.set(level, value);
        }
        per_level
    }
}

/// How often each of one login's values occurs in a population of logins.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    /// Logins in the population.
    pub logins: u64,
    /// Of those, how many had this login's value, per level.
    pub matching: PerLevel,
}

impl Counts {
    pub fn of(&self, level: Level) -> u64 {
        self.matching.get(level)
    }
}

/// The global side: the counts, the number of distinct values known per level (for the
/// smoothing) and the number of users with an approved login.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GlobalCounts {
    pub counts: Counts,
    pub distinct: PerLevel,
    pub users: u64,
}

/// log10 of S_u(x), and each feature's ratio p(x_k) / p(x_k | u) for explanations.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub log10: f64,
    pub ratios: Vec<(&'static str, f64)>,
}

pub fn score(spec: &Spec, login: &Features, user: &Counts, global: &GlobalCounts) -> Score {
    let mut log10 = 0.0;
    let mut ratios = Vec::with_capacity(spec.features.len());
    for &(name, hierarchy) in spec.features {
        let levels: Vec<(Level, f64)> = hierarchy
            .iter()
            .copied()
            .filter(|(level, _)| login.get(*level).is_some())
            .collect();
        let weight_sum: f64 = levels.iter().map(|(_, w)| w).sum();
        if levels.is_empty() || weight_sum <= 0.0 {
            continue;
        }
        let global_likelihood = global_likelihood(&levels, global, spec.prior_logins) / weight_sum;
        let user_likelihood = user_likelihood(&levels, user) / weight_sum;
        let user_likelihood = if user_likelihood > 0.0 {
            user_likelihood
        } else {
            global_likelihood / 4.0
        };
        let ratio = global_likelihood / user_likelihood;
        log10 += ratio.log10();
        ratios.push((name, ratio));
    }
    let n = global.counts.logins.max(1) as f64;
    let users = global.users.max(1) as f64;
    let n_u = user.logins.max(1) as f64;
    log10 += (n / (users * n_u)).log10();
    Score { log10, ratios }
}

/// Σ_j w_j · max(c_j, 1) / (N + N_0 + U_j), U_j = 1 + distinct values at coarser levels.
fn global_likelihood(levels: &[(Level, f64)], global: &GlobalCounts, prior: f64) -> f64 {
    let n = global.counts.logins as f64 + prior;
    levels
        .iter()
        .enumerate()
        .map(|(j, &(level, weight))| {
            let unseen = 1.0
                + levels[j + 1..]
                    .iter()
                    .map(|(coarser, _)| global.distinct.get(*coarser) as f64)
                    .sum::<f64>();
            let count = global.counts.of(level).max(1) as f64;
            weight * count / (n + unseen)
        })
        .sum()
}

/// Σ_j w_j · c_u,j / n_u, unsmoothed.
fn user_likelihood(levels: &[(Level, f64)], user: &Counts) -> f64 {
    if user.logins == 0 {
        return 0.0;
    }
    let n_u = user.logins as f64;
    levels
        .iter()
        .map(|&(level, weight)| weight * user.of(level) as f64 / n_u)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(values: &[(Level, &str)]) -> Features {
        Features::from_values(values.iter().map(|(l, v)| (*l, v.to_string())))
    }

    fn counts(logins: u64, matching: &[(Level, u64)]) -> Counts {
        Counts {
            logins,
            matching: matching.iter().copied().collect(),
        }
    }

    const DEVICE_ONLY: Spec = Spec {
        features: &[("device", &[(Level::Device, 1.0)])],
        prior_logins: 0.0,
    };
    const ADDRESS: Spec = Spec {
        features: &[(
            "ip",
            &[(Level::Ip, 0.6), (Level::Asn, 0.3), (Level::Country, 0.1)],
        )],
        prior_logins: 0.0,
    };

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn the_smoothing_matches_hand_computed_values() {
        // N = 100 logins by 10 users; 40 distinct ASNs and 5 countries known.
        let global = GlobalCounts {
            counts: counts(
                100,
                &[(Level::Ip, 4), (Level::Asn, 20), (Level::Country, 60)],
            ),
            distinct: [(Level::Asn, 40), (Level::Country, 5)]
                .into_iter()
                .collect(),
            users: 10,
        };
        // The user: 8 logins, 4 from this address, 8 from this ASN and country.
        let user = counts(8, &[(Level::Ip, 4), (Level::Asn, 8), (Level::Country, 8)]);
        let login = features(&[
            (Level::Ip, "a"),
            (Level::Asn, "AS1"),
            (Level::Country, "DE"),
        ]);
        let result = score(&ADDRESS, &login, &user, &global);
        // Global: 0.6·4/(100+1+40+5) + 0.3·20/(100+1+5) + 0.1·60/(100+1)
        let p_global = 0.6 * 4.0 / 146.0 + 0.3 * 20.0 / 106.0 + 0.1 * 60.0 / 101.0;
        // User: 0.6·4/8 + 0.3·8/8 + 0.1·8/8
        let p_user = 0.6 * 0.5 + 0.3 + 0.1;
        let (_, ratio) = result.ratios[0];
        assert!(close(ratio, p_global / p_user), "{ratio}");
        let prior: f64 = 100.0 / (10.0 * 8.0);
        assert!(close(result.log10, (p_global / p_user * prior).log10()));
    }

    #[test]
    fn the_cold_start_padding_keeps_a_lone_users_usual_login_unremarkable() {
        // One user, all 5 logins with the same device: global = user.
        let global = GlobalCounts {
            counts: counts(5, &[(Level::Device, 5)]),
            distinct: [(Level::Device, 1)].into_iter().collect(),
            users: 1,
        };
        let user = counts(5, &[(Level::Device, 5)]);
        let login = features(&[(Level::Device, "id:d")]);
        let bare = score(&DEVICE_ONLY, &login, &user, &global);
        let padded = Spec {
            prior_logins: 1000.0,
            ..DEVICE_ONLY
        };
        let padded = score(&padded, &login, &user, &global);
        // Without padding: (5/6) / 1 · 5/(1·5): "as likely as anybody".
        assert!(close(bare.log10, (5.0f64 / 6.0).log10()));
        // With it: (5/1006) / 1.
        assert!(close(padded.log10, (5.0f64 / 1006.0).log10()));
    }

    #[test]
    fn an_entirely_new_value_gets_four_times_the_global_likelihood() {
        let global = GlobalCounts {
            counts: counts(1000, &[]),
            distinct: PerLevel::default(),
            users: 100,
        };
        let user = counts(10, &[]);
        let result = score(
            &DEVICE_ONLY,
            &features(&[(Level::Device, "id:new")]),
            &user,
            &global,
        );
        assert!(close(result.ratios[0].1, 4.0));
    }

    #[test]
    fn a_known_device_scores_lower_than_an_unknown_one() {
        let global = GlobalCounts {
            counts: counts(1000, &[(Level::Device, 10)]),
            distinct: PerLevel::default(),
            users: 100,
        };
        let login = features(&[(Level::Device, "id:d")]);
        let known = score(
            &DEVICE_ONLY,
            &login,
            &counts(10, &[(Level::Device, 10)]),
            &global,
        );
        let global_unknown = GlobalCounts {
            counts: counts(1000, &[]),
            ..global.clone()
        };
        let unknown = score(&DEVICE_ONLY, &login, &counts(10, &[]), &global_unknown);
        assert!(known.log10 < unknown.log10 - 2.0, "{known:?} {unknown:?}");
    }

    #[test]
    fn missing_levels_are_left_out_and_the_weights_renormalised() {
        let global = GlobalCounts {
            counts: counts(100, &[(Level::Ip, 1)]),
            distinct: PerLevel::default(),
            users: 10,
        };
        let user = counts(10, &[(Level::Ip, 5)]);
        let result = score(&ADDRESS, &features(&[(Level::Ip, "a")]), &user, &global);
        // Only the Ip level: (1/101) / (5/10).
        assert!(close(result.ratios[0].1, (1.0 / 101.0) / 0.5));
    }
}

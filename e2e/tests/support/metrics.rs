//! Reading a service's `/metrics` as a test does: the samples by name and labels, and the
//! families its `# TYPE` lines declare (also those with no sample yet).

use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Clone, Default)]
pub struct Scrape {
    pub samples: Vec<Sample>,
    /// `(family, type)` from the `# TYPE` lines.
    pub families: Vec<(String, String)>,
}

impl Scrape {
    pub async fn of(http: &reqwest::Client, url: &str) -> Scrape {
        let response = http.get(url).send().await.expect("GET /metrics answers");
        assert_eq!(response.status(), 200, "GET {url}");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("application/openmetrics-text")
                || content_type.starts_with("text/plain"),
            "{url}: content type {content_type}"
        );
        Scrape::parse(&response.text().await.expect("a text body"))
    }

    pub fn parse(text: &str) -> Scrape {
        let mut scrape = Scrape::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (family, kind) = rest.split_once(' ').expect("# TYPE name type");
                scrape.families.push((family.to_owned(), kind.to_owned()));
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            scrape.samples.push(parse_sample(line));
        }
        scrape
    }

    /// The sum of the samples named `name` whose labels include all of `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .sum()
    }

    pub fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| s.name == name)
    }

    /// Every series name a query may use: counters with `_total` (and `_created`),
    /// histograms with `_bucket`, `_sum`, `_count`, the others as declared.
    pub fn queryable_names(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for (family, kind) in &self.families {
            match kind.as_str() {
                "counter" => {
                    names.insert(format!("{family}_total"));
                    names.insert(format!("{family}_created"));
                }
                "histogram" => {
                    for suffix in ["_bucket", "_sum", "_count", "_created"] {
                        names.insert(format!("{family}{suffix}"));
                    }
                }
                _ => {
                    names.insert(family.clone());
                }
            }
        }
        names
    }

    /// Label sets that carry a value no bounded set has: a UUID, an email, an IP address.
    pub fn unbounded_labels(&self) -> Vec<String> {
        let looks_personal = |v: &str| {
            uuid::Uuid::parse_str(v).is_ok()
                || v.contains('@')
                || v.parse::<std::net::IpAddr>().is_ok()
        };
        self.samples
            .iter()
            .flat_map(|s| {
                s.labels
                    .iter()
                    .filter(|(_, v)| looks_personal(v))
                    .map(move |(k, v)| format!("{}{{{k}={v}}}", s.name))
            })
            .collect()
    }
}

fn parse_sample(line: &str) -> Sample {
    let (name_and_labels, rest) = match line.find('{') {
        Some(_) => {
            let close = line.rfind('}').expect("labels close");
            (&line[..=close], line[close + 1..].trim())
        }
        None => {
            let (name, rest) = line.split_once(' ').expect("name value");
            (name, rest.trim())
        }
    };
    let (name, labels) = match name_and_labels.split_once('{') {
        Some((name, labels)) => (name, parse_labels(labels.trim_end_matches('}'))),
        None => (name_and_labels, BTreeMap::new()),
    };
    let value = rest.split_whitespace().next().expect("a value");
    Sample {
        name: name.to_owned(),
        labels,
        value: match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("a number in {line:?}")),
        },
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(if escaped == 'n' { '\n' } else { escaped });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').trim().to_owned(), value);
        rest = &after[end..];
    }
    labels
}

#[test]
fn samples_and_families_are_read() {
    let scrape = Scrape::parse(
        "# HELP mfa_x An x.\n# TYPE mfa_x counter\nmfa_x_total{a=\"1\",b=\"q\\\"t\"} 3\nmfa_y 2.5\n# EOF\n",
    );
    assert_eq!(scrape.sum("mfa_x_total", &[("a", "1")]), 3.0);
    assert_eq!(scrape.sum("mfa_x_total", &[("b", "q\"t")]), 3.0);
    assert_eq!(scrape.sum("mfa_y", &[]), 2.5);
    assert!(scrape.queryable_names().contains("mfa_x_total"));
}

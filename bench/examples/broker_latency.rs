//! How long one record takes through the broker, apart from the services: the produce
//! round trip (what an outbox relay waits for) and the time from the produce call to a
//! consumer holding the record (a hop of a login), for each `fetch.wait.max.ms` given, with
//! the services' own producer (`mfa_bus::kafka::KafkaPublisher`) and consumer settings.
//!
//! ```sh
//! source .stack/stack.env
//! cargo run --release -p mfa-bench --example broker_latency -- --waits 1,5,20 --records 300
//! ```

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use hdrhistogram::Histogram;
use mfa_bus::kafka::{ensure_topics, KafkaPublisher};
use mfa_bus::metrics::BusMetrics;
use mfa_bus::{EventPublisher, OutgoingMessage};
use mfa_runtime::config::KafkaConfig;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;

#[derive(Parser)]
struct Args {
    /// `fetch.wait.max.ms` values to measure, in order
    #[arg(long, value_delimiter = ',', default_value = "1,5,20")]
    waits: Vec<u32>,
    /// Records sent one at a time for each value
    #[arg(long, default_value_t = 300)]
    records: usize,
    /// Pause between two records, ms (a record arrives at a random point of a fetch)
    #[arg(long, default_value_t = 7)]
    gap_ms: u64,
    /// Also time a bare producer with these `key=value` settings (repeatable), beside the
    /// services' own, to see what a setting costs
    #[arg(long = "producer-set", value_parser = parse_setting)]
    producer_settings: Vec<(String, String)>,
}

fn parse_setting(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{text}: expected key=value"))
}

/// The produce round trip of a bare producer with `settings`, one record at a time.
async fn bare_produce(
    brokers: &str,
    topic: &str,
    settings: &[(String, String)],
    records: usize,
) -> Result<Histogram<u64>> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    for (key, value) in settings {
        config.set(key, value);
    }
    let producer: rdkafka::producer::FutureProducer = config.create()?;
    let mut histogram = Histogram::<u64>::new(3)?;
    for n in 0..records {
        let payload = n.to_string();
        let sent = Instant::now();
        producer
            .send(
                rdkafka::producer::FutureRecord::to(topic)
                    .key("k")
                    .payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(error, _)| error)?;
        histogram.record(sent.elapsed().as_micros() as u64)?;
        tokio::time::sleep(Duration::from_millis(7)).await;
    }
    Ok(histogram)
}

fn quantiles(histogram: &Histogram<u64>) -> String {
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    format!(
        "p50 {:.2} / p90 {:.2} / p99 {:.2} ms",
        ms(0.5),
        ms(0.9),
        ms(0.99)
    )
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let brokers = std::env::var("MFA_KAFKA_BROKERS")
        .context("MFA_KAFKA_BROKERS (source .stack/stack.env)")?;
    for wait in args.waits {
        let kafka = KafkaConfig {
            brokers: brokers.clone(),
            namespace: format!("latency{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
            partitions: 1,
            replication_factor: 1,
            retention_ms: -1,
            login_requests_retention: KafkaConfig::DEFAULT_LOGIN_REQUESTS_RETENTION,
            fetch_wait_ms: wait,
        };
        ensure_topics(&kafka).await?;
        let topic = kafka.topics().accounts;
        let publisher = KafkaPublisher::new(&kafka, &BusMetrics::unregistered())?;
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", format!("latency-{}", uuid::Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", wait.to_string())
            .create()?;
        consumer.subscribe(&[&topic])?;
        // Joined and fetching before the first record counts.
        publisher.publish_bytes(&topic, "warm-up", b"0").await?;
        tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .context("the warm-up record never arrived")??;

        let mut produce = Histogram::<u64>::new(3)?;
        let mut hop = Histogram::<u64>::new(3)?;
        for n in 0..args.records {
            let payload = n.to_string();
            let sent = Instant::now();
            publisher
                .send(OutgoingMessage {
                    topic: &topic,
                    key: "k",
                    payload: payload.as_bytes(),
                    traceparent: None,
                    seal: None,
                })
                .await?;
            produce.record(sent.elapsed().as_micros() as u64)?;
            loop {
                let message = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
                    .await
                    .context("a record never arrived")??;
                if message.payload() == Some(payload.as_bytes()) {
                    break;
                }
            }
            hop.record(sent.elapsed().as_micros() as u64)?;
            tokio::time::sleep(Duration::from_millis(args.gap_ms)).await;
        }
        println!(
            "fetch.wait.max.ms {wait:>3}: produce acknowledged {}; produce call to consumer {}",
            quantiles(&produce),
            quantiles(&hop)
        );
        if !args.producer_settings.is_empty() {
            let bare =
                bare_produce(&brokers, &topic, &args.producer_settings, args.records).await?;
            println!(
                "  a bare producer with {:?}: produce acknowledged {}",
                args.producer_settings,
                quantiles(&bare)
            );
        }
    }
    Ok(())
}

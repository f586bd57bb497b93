//! A validated run plan, resolved from the command line.

use crate::cli::{Command, CommonArgs, PublishArgs};
use crate::connection::ClientOptions;
use crate::dialer::Dialer;
use crate::payload::HEADER_LEN;
use crate::publisher::{PublishSpec, Schedule};
use crate::topic::{shared_filter, TopicPattern};
use midge_codec::{ProtocolVersion, QoS};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Duration used when neither --duration nor --count is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);
/// Upper bound when only --count is given, so a stalled broker cannot keep the tool running.
pub const COUNT_ONLY_CAP: Duration = Duration::from_secs(300);

/// Why the command line cannot be run.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    /// A numeric option is out of range.
    #[error("{0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> PlanError {
    PlanError::Invalid(msg.into())
}

/// How the subscribers' deliveries relate to what was published (for loss accounting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fanout {
    /// Every subscriber receives every message.
    All,
    /// Each message reaches one subscriber (shared group, or subscriber i = publisher i).
    One,
}

/// The subscriber group of a run.
#[derive(Debug, Clone)]
pub struct SubscriberPlan {
    /// Number of subscribers.
    pub clients: u64,
    /// Filter pattern (`%i` = client index).
    pub filter: TopicPattern,
    /// Requested QoS.
    pub qos: QoS,
    /// Messages per subscriber, if bounded.
    pub count: Option<u64>,
    /// Delivery relation, for `pubsub`.
    pub fanout: Fanout,
    /// Subscribed through a `$share` group (per-subscriber sequence gaps are then expected).
    pub shared: bool,
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Scenario name.
    pub scenario: &'static str,
    /// The arguments, for the summary.
    pub args: serde_json::Value,
    /// Broker address.
    pub broker: SocketAddr,
    /// Where subscribers connect, when not to `broker` (`pubsub --sub-port`).
    pub sub_broker: Option<SocketAddr>,
    /// Source addresses.
    pub ifaddr: Vec<std::net::IpAddr>,
    /// CONNECT settings.
    pub options: ClientOptions,
    /// Client id prefix.
    pub prefix: String,
    /// First client index.
    pub start: u64,
    /// Connections per second (0 = unlimited).
    pub connect_rate: f64,
    /// How long the measured phase lasts at most.
    pub duration: Duration,
    /// True when the run ends when the counts are done.
    pub count_bounded: bool,
    /// Time allowed after publishing for acks and deliveries.
    pub drain: Duration,
    /// Idle connections (`conn`).
    pub idle_clients: u64,
    /// Publishers and what they send.
    pub publishers: Option<(u64, Arc<PublishSpec>)>,
    /// Subscribers.
    pub subscribers: Option<SubscriberPlan>,
    /// Broker PID for CPU accounting.
    pub broker_pid: Option<u32>,
    /// Print progress lines.
    pub progress: bool,
}

impl Plan {
    /// Validates `command` against an already resolved broker address.
    pub fn new(command: &Command, broker: SocketAddr) -> Result<Plan, PlanError> {
        let common = command.common();
        let count = match command {
            Command::Conn(_) => None,
            Command::Pub(a) => a.publish.count,
            Command::Sub(a) => a.count,
            Command::Pubsub(a) => a.publish.count,
        };
        let (duration, count_bounded) = run_bound(common.duration, count)?;
        let mut plan = Plan {
            scenario: command.name(),
            args: serde_json::to_value(command).unwrap_or_default(),
            broker,
            sub_broker: match command {
                Command::Pubsub(a) => a.sub_port.map(|p| SocketAddr::new(broker.ip(), p)),
                _ => None,
            },
            ifaddr: common.ifaddr.clone(),
            options: client_options(common)?,
            prefix: common.prefix.clone(),
            start: common.start,
            connect_rate: non_negative("--connect-rate", common.connect_rate)?,
            duration,
            count_bounded,
            drain: Duration::ZERO,
            idle_clients: 0,
            publishers: None,
            subscribers: None,
            broker_pid: common.broker_pid,
            progress: !common.quiet,
        };
        if common.threads == 0 {
            return Err(invalid("--threads must be at least 1"));
        }
        match command {
            Command::Conn(a) => plan.idle_clients = at_least_one("-c", a.clients)?,
            Command::Pub(a) => {
                let clients = at_least_one("-c", a.clients)?;
                plan.drain = seconds("--drain", a.publish.drain)?;
                plan.publishers = Some((clients, publish_spec(&a.publish, clients, a.retain)?));
            }
            Command::Sub(a) => {
                plan.subscribers = Some(SubscriberPlan {
                    clients: at_least_one("-c", a.clients)?,
                    filter: TopicPattern::parse(&a.topic),
                    qos: qos(a.qos)?,
                    count: a.count,
                    fanout: Fanout::All,
                    shared: a.topic.starts_with("$share/"),
                });
            }
            Command::Pubsub(a) => {
                let pubs = at_least_one("--pubs", a.pubs)?;
                if a.publish.size < HEADER_LEN {
                    return Err(invalid(format!(
                        "pubsub needs -s {HEADER_LEN} or more: the payload carries a \
                         {HEADER_LEN}-byte timestamp/sequence header"
                    )));
                }
                plan.drain = seconds("--drain", a.publish.drain)?;
                let spec = publish_spec(&a.publish, pubs, false)?;
                let (filter, mut fanout) = match &a.sub_topic {
                    Some(f) => {
                        let p = TopicPattern::parse(f);
                        let fanout = if p.is_per_client() {
                            Fanout::One
                        } else {
                            Fanout::All
                        };
                        (f.clone(), fanout)
                    }
                    None => (spec.topic.covering_filter(), Fanout::All),
                };
                let filter = match &a.shared {
                    Some(group) => {
                        fanout = Fanout::One;
                        shared_filter(group, &filter)
                    }
                    None => filter,
                };
                plan.subscribers = Some(SubscriberPlan {
                    clients: at_least_one("--subs", a.subs)?,
                    filter: TopicPattern::parse(&filter),
                    qos: spec.qos,
                    count: None,
                    fanout,
                    shared: a.shared.is_some(),
                });
                plan.publishers = Some((pubs, spec));
            }
        }
        Ok(plan)
    }

    /// The dialer for this plan.
    pub fn dialer(&self) -> Dialer {
        Dialer::new(self.broker, self.ifaddr.clone())
    }

    /// The dialer for subscribers (`--sub-port`), if they go elsewhere.
    pub fn sub_dialer(&self) -> Option<Dialer> {
        self.sub_broker
            .map(|addr| Dialer::new(addr, self.ifaddr.clone()))
    }
}

/// Measured-phase length and whether counts end the run.
fn run_bound(duration: Option<f64>, count: Option<u64>) -> Result<(Duration, bool), PlanError> {
    match (duration, count) {
        (Some(d), _) => Ok((seconds("--duration", d)?, count.is_some())),
        (None, Some(_)) => Ok((COUNT_ONLY_CAP, true)),
        (None, None) => Ok((DEFAULT_DURATION, false)),
    }
}

fn client_options(common: &CommonArgs) -> Result<ClientOptions, PlanError> {
    let version = match common.protocol {
        3 => ProtocolVersion::V3_1,
        4 => ProtocolVersion::V3_1_1,
        5 => ProtocolVersion::V5,
        v => return Err(invalid(format!("unknown protocol version {v}"))),
    };
    Ok(ClientOptions {
        version,
        keepalive: common.keepalive,
        username: common.username.clone(),
        password: common.password.clone(),
        clean_start: !common.persistent,
        connect_timeout: seconds("--connect-timeout", common.connect_timeout)?,
    })
}

fn publish_spec(
    a: &PublishArgs,
    clients: u64,
    retain: bool,
) -> Result<Arc<PublishSpec>, PlanError> {
    let interval = non_negative("-I", a.interval)?;
    let schedule = match a.rate {
        Some(rate) if rate > 0.0 && rate.is_finite() => Schedule::TotalRate(rate),
        Some(_) => return Err(invalid("--rate must be a positive number")),
        None if interval > 0.0 => Schedule::Interval(Duration::from_secs_f64(interval / 1e3)),
        None => Schedule::Flood,
    };
    if a.inflight == 0 {
        return Err(invalid("--inflight must be at least 1"));
    }
    Ok(Arc::new(PublishSpec {
        topic: TopicPattern::parse(&a.topic),
        qos: qos(a.qos)?,
        retain,
        payload_len: a.size,
        inflight: a.inflight,
        schedule,
        count: a.count,
        clients,
    }))
}

fn qos(q: u8) -> Result<QoS, PlanError> {
    QoS::from_u8(q).ok_or_else(|| invalid(format!("QoS {q} does not exist")))
}

fn at_least_one(flag: &str, n: u64) -> Result<u64, PlanError> {
    if n == 0 {
        return Err(invalid(format!("{flag} must be at least 1")));
    }
    Ok(n)
}

fn non_negative(flag: &str, v: f64) -> Result<f64, PlanError> {
    if !v.is_finite() || v < 0.0 {
        return Err(invalid(format!("{flag} must be zero or more")));
    }
    Ok(v)
}

fn seconds(flag: &str, v: f64) -> Result<Duration, PlanError> {
    if !v.is_finite() || v <= 0.0 || v > 1e7 {
        return Err(invalid(format!(
            "{flag} must be a positive number of seconds"
        )));
    }
    Ok(Duration::from_secs_f64(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn plan(args: &[&str]) -> Result<Plan, PlanError> {
        let cli = Cli::try_parse_from(std::iter::once("midge-bench").chain(args.iter().copied()))
            .expect("parses");
        Plan::new(&cli.command, "127.0.0.1:1883".parse().unwrap())
    }

    #[test]
    fn run_is_always_bounded() {
        let p = plan(&["pub"]).unwrap();
        assert_eq!((p.duration, p.count_bounded), (DEFAULT_DURATION, false));
        let p = plan(&["pub", "--count", "10"]).unwrap();
        assert_eq!((p.duration, p.count_bounded), (COUNT_ONLY_CAP, true));
        let p = plan(&["pub", "--count", "10", "--duration", "2.5"]).unwrap();
        assert_eq!(
            (p.duration, p.count_bounded),
            (Duration::from_millis(2500), true)
        );
        assert!(plan(&["conn", "--duration", "0"]).is_err());
        assert!(plan(&["conn", "--duration=-1"]).is_err());
    }

    #[test]
    fn pubsub_filters_and_fanout() {
        let p = plan(&["pubsub", "--pubs", "4", "--subs", "2", "-s", "64"]).unwrap();
        let subs = p.subscribers.unwrap();
        assert_eq!(subs.filter.expand(0, "x"), "bench/+");
        assert_eq!(subs.fanout, Fanout::All);
        assert_eq!(p.publishers.unwrap().0, 4);

        let p = plan(&["pubsub", "--shared", "g1", "-t", "a/%i/b"]).unwrap();
        let subs = p.subscribers.unwrap();
        assert_eq!(subs.filter.expand(0, "x"), "$share/g1/a/+/b");
        assert_eq!(subs.fanout, Fanout::One);
        assert!(subs.shared);

        let p = plan(&["pubsub", "--sub-topic", "bench/%i"]).unwrap();
        assert_eq!(p.subscribers.unwrap().fanout, Fanout::One);
    }

    #[test]
    fn schedules() {
        let spec = |args: &[&str]| plan(args).unwrap().publishers.unwrap().1.schedule;
        assert_eq!(spec(&["pub"]), Schedule::Flood);
        assert_eq!(
            spec(&["pub", "-I", "20"]),
            Schedule::Interval(Duration::from_millis(20))
        );
        assert_eq!(
            spec(&["pubsub", "--rate", "10000"]),
            Schedule::TotalRate(10_000.0)
        );
    }

    #[test]
    fn rejects_invalid_plans() {
        assert!(
            plan(&["pubsub", "-s", "10"]).is_err(),
            "payload too small for the header"
        );
        assert!(plan(&["pub", "-c", "0"]).is_err());
        assert!(plan(&["pub", "--inflight", "0"]).is_err());
        assert!(plan(&["pub", "--rate", "0"]).is_err());
        assert!(plan(&["pub", "--threads", "0"]).is_err());
        assert!(plan(&["conn", "--connect-rate=-5"]).is_err());
        let p = plan(&["pub", "-s", "10", "-V", "4"]).unwrap();
        assert_eq!(p.options.version, ProtocolVersion::V3_1_1);
        assert_eq!(p.scenario, "pub");
        assert_eq!(p.args["pub"]["size"], 10);
    }
}

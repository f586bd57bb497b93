//! `$SYS/broker/load/...`: per-minute rates averaged over 1, 5 and 15 minutes, under the
//! names Mosquitto uses, so dashboards built for it read Midge too.
//!
//! Each average decays exponentially: at every update the rate seen since the previous one
//! (scaled to a minute) pulls the average towards itself by a weight of
//! `1 - e^(-elapsed / window)`.

use std::time::Instant;

/// The counters averaged, in the order of [`TOPICS`].
pub(crate) type LoadCounts = [u64; KINDS];

/// How many counters are averaged.
const KINDS: usize = 8;

/// The averaging windows, in seconds, in the order of each row of [`TOPICS`].
const WINDOWS: [f64; 3] = [60.0, 300.0, 900.0];

/// Topic of each average: one row per counter, one column per window.
pub(crate) const TOPICS: [[&str; 3]; KINDS] = [
    [
        "$SYS/broker/load/messages/received/1min",
        "$SYS/broker/load/messages/received/5min",
        "$SYS/broker/load/messages/received/15min",
    ],
    [
        "$SYS/broker/load/messages/sent/1min",
        "$SYS/broker/load/messages/sent/5min",
        "$SYS/broker/load/messages/sent/15min",
    ],
    [
        "$SYS/broker/load/publish/received/1min",
        "$SYS/broker/load/publish/received/5min",
        "$SYS/broker/load/publish/received/15min",
    ],
    [
        "$SYS/broker/load/publish/sent/1min",
        "$SYS/broker/load/publish/sent/5min",
        "$SYS/broker/load/publish/sent/15min",
    ],
    [
        "$SYS/broker/load/bytes/received/1min",
        "$SYS/broker/load/bytes/received/5min",
        "$SYS/broker/load/bytes/received/15min",
    ],
    [
        "$SYS/broker/load/bytes/sent/1min",
        "$SYS/broker/load/bytes/sent/5min",
        "$SYS/broker/load/bytes/sent/15min",
    ],
    [
        "$SYS/broker/load/connections/1min",
        "$SYS/broker/load/connections/5min",
        "$SYS/broker/load/connections/15min",
    ],
    [
        "$SYS/broker/load/sockets/1min",
        "$SYS/broker/load/sockets/5min",
        "$SYS/broker/load/sockets/15min",
    ],
];

/// The running averages and the counts they were last updated with.
#[derive(Debug, Default)]
pub(crate) struct LoadAverages {
    last: Option<(Instant, LoadCounts)>,
    averages: [[f64; 3]; KINDS],
}

impl LoadAverages {
    /// Folds in the counts at `now` (counters only grow; a smaller one counts as no change).
    pub(crate) fn update(&mut self, now: Instant, counts: LoadCounts) {
        if let Some((at, before)) = self.last {
            let secs = now.saturating_duration_since(at).as_secs_f64();
            if secs <= 0.0 {
                return;
            }
            for (row, (count, before)) in self.averages.iter_mut().zip(counts.iter().zip(before)) {
                let per_minute = count.saturating_sub(before) as f64 * 60.0 / secs;
                for (average, window) in row.iter_mut().zip(WINDOWS) {
                    let keep = (-secs / window).exp();
                    *average = per_minute + keep * (*average - per_minute);
                }
            }
        }
        self.last = Some((now, counts));
    }

    /// Every average as (topic, value with two decimals).
    pub(crate) fn values(&self) -> impl Iterator<Item = (&'static str, String)> + '_ {
        TOPICS.iter().zip(&self.averages).flat_map(|(topics, row)| {
            topics
                .iter()
                .zip(row)
                .map(|(topic, average)| (*topic, format!("{average:.2}")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn value(load: &LoadAverages, topic: &str) -> f64 {
        let (_, v) = load.values().find(|(t, _)| *t == topic).expect("topic");
        v.parse().expect("number")
    }

    #[test]
    fn a_steady_rate_is_approached_faster_by_shorter_windows() {
        let mut load = LoadAverages::default();
        let start = Instant::now();
        // 10 messages a second = 600 a minute, for five minutes in 10 s steps.
        for step in 0..=30u64 {
            let mut counts = [0; KINDS];
            counts[0] = step * 100;
            load.update(start + Duration::from_secs(step * 10), counts);
        }
        let one = value(&load, TOPICS[0][0]);
        let five = value(&load, TOPICS[0][1]);
        let fifteen = value(&load, TOPICS[0][2]);
        // An exponential average after five of its one-minute windows: 1 - e^-5 of the rate.
        let approached = 600.0 * (1.0 - (-5.0f64).exp());
        assert!((one - approached).abs() < 0.01, "{one} vs {approached}");
        assert!(
            five < one && fifteen < five && fifteen > 0.0,
            "{five} {fifteen}"
        );
        assert_eq!(value(&load, TOPICS[1][0]), 0.0, "nothing sent");
        // The rate stops: the averages decay towards zero.
        for step in 31..=60u64 {
            let mut counts = [0; KINDS];
            counts[0] = 3000;
            load.update(start + Duration::from_secs(step * 10), counts);
        }
        let decayed = value(&load, TOPICS[0][0]);
        assert!(
            (decayed - approached * (-5.0f64).exp()).abs() < 0.01,
            "{decayed}"
        );
        assert_eq!(load.values().count(), KINDS * 3);
    }
}

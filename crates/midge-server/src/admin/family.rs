//! Building Prometheus metric families from values read at scrape time.

use prometheus::core::Desc;
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use std::collections::HashMap;

/// One family's name, help and label names: what a collector declares at registration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FamilySpec {
    pub(crate) name: &'static str,
    pub(crate) help: &'static str,
    pub(crate) kind: MetricType,
    pub(crate) labels: &'static [&'static str],
}

impl FamilySpec {
    /// A counter family.
    pub(crate) const fn counter(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> FamilySpec {
        FamilySpec {
            name,
            help,
            kind: MetricType::COUNTER,
            labels,
        }
    }

    /// A gauge family.
    pub(crate) const fn gauge(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> FamilySpec {
        FamilySpec {
            name,
            help,
            kind: MetricType::GAUGE,
            labels,
        }
    }

    /// The registry's descriptor of this family. The names are constants checked by the
    /// tests, so a failure here is a programming error caught at registration.
    pub(crate) fn desc(&self) -> prometheus::Result<Desc> {
        Desc::new(
            self.name.to_string(),
            self.help.to_string(),
            self.labels.iter().map(|l| l.to_string()).collect(),
            HashMap::new(),
        )
    }

    /// The family with one sample per `(label values, value)`; label values pair up with
    /// [`FamilySpec::labels`] in order.
    pub(crate) fn family(&self, samples: &[(&[&str], f64)]) -> MetricFamily {
        let metrics = samples
            .iter()
            .map(|(values, value)| self.sample(values, *value))
            .collect();
        let mut family = MetricFamily::default();
        family.set_name(self.name.to_string());
        family.set_help(self.help.to_string());
        family.set_field_type(self.kind);
        family.set_metric(metrics);
        family
    }

    /// The family with one unlabelled sample.
    pub(crate) fn single(&self, value: f64) -> MetricFamily {
        self.family(&[(&[], value)])
    }

    fn sample(&self, values: &[&str], value: f64) -> Metric {
        let labels = self
            .labels
            .iter()
            .zip(values)
            .map(|(name, value)| {
                let mut pair = LabelPair::default();
                pair.set_name(name.to_string());
                pair.set_value(value.to_string());
                pair
            })
            .collect();
        let mut metric = Metric::default();
        metric.set_label(labels);
        match self.kind {
            MetricType::GAUGE => {
                let mut gauge = Gauge::default();
                gauge.set_value(value);
                metric.set_gauge(gauge);
            }
            _ => {
                let mut counter = Counter::default();
                counter.set_value(value);
                metric.set_counter(counter);
            }
        }
        metric
    }
}

//! Sandbox guards on what one client may ask of the broker: topic depth, wildcard depth and
//! the number of subscriptions. Each is off at 0 and counted when it fires.

use crate::event::ConnId;
use crate::Broker;
use midge_codec::ReasonCode;

/// How often each guard fired.
#[derive(Debug, Default)]
pub(crate) struct GuardCounters {
    pub(crate) topic_too_deep: u64,
    pub(crate) subscription_quota: u64,
    pub(crate) shallow_wildcard_refused: u64,
    pub(crate) shallow_wildcard_replay_skipped: u64,
    pub(crate) receive_maximum_exceeded: u64,
}

/// What the subscription guards say about one filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FilterVerdict {
    /// Granted as usual.
    Grant,
    /// Granted, but no retained messages are sent for it.
    GrantWithoutRetained,
    /// Refused with this SUBACK reason.
    Refuse(ReasonCode),
}

/// Number of levels of a topic name or filter.
fn levels(topic: &str) -> usize {
    topic.split('/').count()
}

/// Number of levels before the first wildcard, or `None` without wildcards.
fn wildcard_depth(filter: &str) -> Option<usize> {
    filter
        .split('/')
        .position(|level| level == "+" || level == "#")
}

impl Broker {
    /// Why a PUBLISH to `topic` is refused by a guard, if it is.
    pub(crate) fn guard_publish(&mut self, topic: &str) -> Option<ReasonCode> {
        let max = self.config.max_topic_levels;
        if max > 0 && levels(topic) > max {
            self.guard_counters.topic_too_deep += 1;
            return Some(ReasonCode::TopicNameInvalid);
        }
        None
    }

    /// What the guards say about subscribing `filter` (`$share/` prefix removed) for a
    /// session holding `held` subscriptions, `new` when the filter is not one of them.
    pub(crate) fn guard_subscribe(
        &mut self,
        filter: &str,
        held: usize,
        new: bool,
    ) -> FilterVerdict {
        let c = &self.config;
        if c.max_topic_levels > 0 && levels(filter) > c.max_topic_levels {
            self.guard_counters.topic_too_deep += 1;
            return FilterVerdict::Refuse(ReasonCode::TopicFilterInvalid);
        }
        if new && c.max_subscriptions_per_client > 0 && held >= c.max_subscriptions_per_client {
            self.guard_counters.subscription_quota += 1;
            return FilterVerdict::Refuse(ReasonCode::QuotaExceeded);
        }
        let shallow = wildcard_depth(filter).is_some_and(|depth| depth < c.min_wildcard_depth);
        if !shallow {
            return FilterVerdict::Grant;
        }
        if c.shallow_wildcard_without_retained {
            self.guard_counters.shallow_wildcard_replay_skipped += 1;
            FilterVerdict::GrantWithoutRetained
        } else {
            self.guard_counters.shallow_wildcard_refused += 1;
            FilterVerdict::Refuse(ReasonCode::NotAuthorized)
        }
    }

    /// Whether connection `conn`'s session already has subscription `filter`, and how many
    /// it has.
    pub(crate) fn held_subscriptions(&self, conn: ConnId, filter: &str) -> (usize, bool) {
        self.conns
            .get(&conn)
            .and_then(|c| self.sessions.get(c.session))
            .and_then(|s| s.subscriptions.get())
            .map_or((0, false), |held| (held.len(), held.contains_key(filter)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depths() {
        assert_eq!(levels("a"), 1);
        assert_eq!(levels("a/b/"), 3);
        assert_eq!(wildcard_depth("#"), Some(0));
        assert_eq!(wildcard_depth("a/+/c"), Some(1));
        assert_eq!(wildcard_depth("a/b"), None);
    }
}

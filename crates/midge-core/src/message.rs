//! An application message waiting in the broker, with its expiry.

use midge_codec::Publish;
use std::time::{Duration, Instant};

/// A PUBLISH tailored for one subscriber (QoS, RETAIN, subscription identifiers already set)
/// plus the instant its Message Expiry Interval runs out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The packet to send (packet id and DUP are set when it is sent).
    pub publish: Publish,
    /// When the message expires; `None` if it never does.
    pub expires_at: Option<Instant>,
}

impl Message {
    /// True once the Message Expiry Interval has passed (MQTT-3.3.2-5).
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }

    /// A copy of the PUBLISH whose Message Expiry Interval is the time left, in whole seconds
    /// rounded up (MQTT-3.3.2-6); at least 1 for a message already in flight.
    pub fn to_send(&self, now: Instant) -> Publish {
        self.clone().into_send(now)
    }

    /// [`Message::to_send`] without the copy.
    pub fn into_send(self, now: Instant) -> Publish {
        let mut publish = self.publish;
        if let Some(at) = self.expires_at {
            publish.properties.make_mut().message_expiry_interval =
                Some(remaining_secs(at, now).max(1));
        }
        publish
    }
}

/// The instant a message received at `now` with this Message Expiry Interval expires.
/// An interval of 0 is treated as "no expiry".
pub fn expiry_instant(now: Instant, interval: Option<u32>) -> Option<Instant> {
    match interval {
        Some(secs) if secs > 0 => now.checked_add(Duration::from_secs(u64::from(secs))),
        _ => None,
    }
}

/// Whole seconds from `now` until `at`, rounded up (0 when `at` has passed).
pub fn remaining_secs(at: Instant, now: Instant) -> u32 {
    let left = at.saturating_duration_since(now);
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    u32::try_from(secs).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_rounds_up() {
        let now = Instant::now();
        let at = now + Duration::from_millis(8_500);
        assert_eq!(remaining_secs(at, now), 9);
        assert_eq!(remaining_secs(at, at + Duration::from_secs(1)), 0);
        assert_eq!(expiry_instant(now, Some(0)), None);
        assert_eq!(
            expiry_instant(now, Some(2)),
            Some(now + Duration::from_secs(2))
        );
    }
}

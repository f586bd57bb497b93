//! Why messages the broker meant to deliver were dropped, counted per reason.

/// Why a message to one session was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The session's queue was full (`max_queued_messages`), or a QoS 0 message made room
    /// for a QoS 1/2 one, or QoS 0 is not queued for offline sessions.
    QueueFull,
    /// Its Message Expiry Interval passed before it could be sent.
    Expired,
    /// Larger than the Maximum Packet Size the client asked for (MQTT-3.1.2-24).
    TooLarge,
    /// The access policy no longer lets the session receive it.
    NotAuthorized,
    /// The session's queued bytes were at `max_queued_bytes`: a new QoS 0 message, a queued
    /// QoS 0 message making room for a newer one, or a message that did not fit even so.
    QueueBytes,
}

impl DropReason {
    /// Every reason, in a fixed order (the order of [`DropCounts::get`]).
    pub const ALL: [DropReason; 5] = [
        DropReason::QueueFull,
        DropReason::Expired,
        DropReason::TooLarge,
        DropReason::NotAuthorized,
        DropReason::QueueBytes,
    ];

    /// A short snake_case name, as a metrics label uses it.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::Expired => "expired",
            DropReason::TooLarge => "too_large",
            DropReason::NotAuthorized => "not_authorized",
            DropReason::QueueBytes => "queue_bytes",
        }
    }
}

/// Dropped messages per [`DropReason`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounts {
    counts: [u64; 5],
}

impl DropCounts {
    /// Counts one drop.
    pub fn add(&mut self, reason: DropReason) {
        self.counts[reason as usize] += 1;
    }

    /// Drops counted for `reason`.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.counts[reason as usize]
    }

    /// Drops for every reason together.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_kept_per_reason() {
        let mut c = DropCounts::default();
        c.add(DropReason::Expired);
        c.add(DropReason::Expired);
        c.add(DropReason::NotAuthorized);
        assert_eq!(c.get(DropReason::Expired), 2);
        assert_eq!(c.get(DropReason::QueueFull), 0);
        assert_eq!(c.get(DropReason::NotAuthorized), 1);
        assert_eq!(c.total(), 3);
        let names: Vec<_> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            names,
            [
                "queue_full",
                "expired",
                "too_large",
                "not_authorized",
                "queue_bytes"
            ]
        );
    }
}

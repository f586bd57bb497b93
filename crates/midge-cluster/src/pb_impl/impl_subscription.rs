//! `midge_core::Subscription` <-> `pb::Subscription`.

use super::{qos_from_pb, FieldError};
use crate::pb;
use midge_codec::{RetainHandling, SubscriptionOptions};
use midge_core::Subscription;

impl From<&Subscription> for pb::Subscription {
    fn from(s: &Subscription) -> pb::Subscription {
        let o = &s.options;
        pb::Subscription {
            qos: o.qos as u32,
            no_local: o.no_local,
            retain_as_published: o.retain_as_published,
            retain_handling: match o.retain_handling {
                RetainHandling::SendAtSubscribe => 0,
                RetainHandling::SendIfNew => 1,
                RetainHandling::DoNotSend => 2,
            },
            identifier: s.identifier,
        }
    }
}

impl TryFrom<pb::Subscription> for Subscription {
    type Error = FieldError;

    fn try_from(s: pb::Subscription) -> Result<Subscription, FieldError> {
        let retain_handling = match s.retain_handling {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendIfNew,
            2 => RetainHandling::DoNotSend,
            other => {
                return Err(FieldError::out_of_range(
                    "Subscription.retain_handling",
                    other,
                ))
            }
        };
        Ok(Subscription {
            options: SubscriptionOptions {
                qos: qos_from_pb(s.qos, "Subscription.qos")?,
                no_local: s.no_local,
                retain_as_published: s.retain_as_published,
                retain_handling,
            },
            identifier: s.identifier,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb_impl::strategies::subscription;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trips(sub in subscription()) {
            prop_assert_eq!(Subscription::try_from(pb::Subscription::from(&sub)).unwrap(), sub);
        }
    }

    #[test]
    fn rejects_bad_retain_handling() {
        let bad = pb::Subscription {
            retain_handling: 3,
            ..Default::default()
        };
        assert_eq!(
            Subscription::try_from(bad).unwrap_err().field,
            "Subscription.retain_handling"
        );
    }
}

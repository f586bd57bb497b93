//! A part of a session that most sessions never use, boxed only once something is stored.
//!
//! Every client has a session record, connected or not, and most never fill some of its
//! parts: an idle device, or a persistent session waiting offline with nothing for it, has no
//! retained messages owed, no QoS 2 ids awaiting PUBREL, no messages taken from a shared group,
//! often no subscription. Inline, each of those is a map or a deque of 32 to 48 bytes; behind
//! an `OnDemand` each is one pointer until first used.

/// `T` in a box allocated on the first write; reads of an unused one see nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OnDemand<T>(Option<Box<T>>);

impl<T: Default> OnDemand<T> {
    /// The value, if anything was ever stored.
    pub fn get(&self) -> Option<&T> {
        self.0.as_deref()
    }

    /// The value for changing, if anything was ever stored; allocates nothing.
    pub fn get_mut(&mut self) -> Option<&mut T> {
        self.0.as_deref_mut()
    }

    /// The value for storing into, allocated (empty) if it was not yet.
    pub fn make_mut(&mut self) -> &mut T {
        self.0.get_or_insert_with(Box::default)
    }

    /// Frees the box; reads see nothing again.
    pub fn clear(&mut self) {
        self.0 = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocated_on_the_first_write_only() {
        let mut v: OnDemand<Vec<u8>> = OnDemand::default();
        assert!(v.get().is_none());
        assert!(
            v.get_mut().is_none(),
            "a read for changing allocates nothing"
        );
        v.make_mut().push(7);
        assert_eq!(v.get(), Some(&vec![7]));
        v.clear();
        assert!(v.get().is_none());
        assert_eq!(std::mem::size_of::<OnDemand<Vec<u8>>>(), 8);
    }
}

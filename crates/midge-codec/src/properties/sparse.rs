//! `Sparse<T>`: a property set that is usually empty, kept behind one shared pointer.
//!
//! Most packets carry no properties at all (every MQTT 3 packet, and most MQTT 5 PUBLISH),
//! yet a property struct is 50 to 200 bytes of `Option`s and `Vec`s. A PUBLISH is moved
//! several times for each subscriber it reaches, so those bytes were most of what fan-out
//! copied. `Sparse` is one pointer: null when the set is empty, otherwise an `Arc` shared by
//! every copy of the packet and copied only when one copy changes it.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// A property set with a shared, immutable empty value that `Sparse` reads when it holds none.
pub trait EmptySet: Clone + PartialEq + 'static {
    /// The set with no property present.
    fn empty() -> &'static Self;
}

/// A property set `T` stored as one pointer: absent when empty, shared between clones, copied
/// on write. Reads go through `Deref`; writes through [`Sparse::make_mut`] (which allocates
/// the set if it was absent) or [`Sparse::get_mut`] (which does not).
pub struct Sparse<T>(Option<Arc<T>>);

impl<T: EmptySet> Sparse<T> {
    /// No properties.
    pub const fn none() -> Sparse<T> {
        Sparse(None)
    }

    /// Wraps `set`, keeping nothing if it is empty.
    pub fn new(set: T) -> Sparse<T> {
        if set == *T::empty() {
            Sparse(None)
        } else {
            Sparse(Some(Arc::new(set)))
        }
    }

    /// True if no property is present.
    pub fn is_empty(&self) -> bool {
        self.0.as_deref().is_none_or(|set| set == T::empty())
    }

    /// The set, for writing: allocated if absent, copied first if another clone shares it.
    pub fn make_mut(&mut self) -> &mut T {
        Arc::make_mut(self.0.get_or_insert_with(|| Arc::new(T::empty().clone())))
    }

    /// The set for writing if any property is present (copied first if shared); `None`
    /// otherwise, without allocating.
    pub fn get_mut(&mut self) -> Option<&mut T> {
        self.0.as_mut().map(Arc::make_mut)
    }

    /// The set by value (a copy if another clone shares it).
    pub fn into_inner(self) -> T {
        match self.0 {
            Some(set) => Arc::unwrap_or_clone(set),
            None => T::empty().clone(),
        }
    }
}

impl<T: EmptySet> Deref for Sparse<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.0.as_deref().unwrap_or_else(|| T::empty())
    }
}

impl<T: EmptySet> From<T> for Sparse<T> {
    fn from(set: T) -> Sparse<T> {
        Sparse::new(set)
    }
}

impl<T> Default for Sparse<T> {
    fn default() -> Sparse<T> {
        Sparse(None)
    }
}

impl<T> Clone for Sparse<T> {
    fn clone(&self) -> Sparse<T> {
        Sparse(self.0.clone())
    }
}

impl<T: EmptySet> PartialEq for Sparse<T> {
    fn eq(&self, other: &Sparse<T>) -> bool {
        **self == **other
    }
}

impl<T: EmptySet + Eq> Eq for Sparse<T> {}

impl<T: EmptySet + fmt::Debug> fmt::Debug for Sparse<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

/// Implements [`EmptySet`] for a property struct from a constant with every field absent.
macro_rules! empty_set {
    ($set:ty, $empty:expr) => {
        impl $crate::properties::EmptySet for $set {
            fn empty() -> &'static $set {
                static EMPTY: $set = $empty;
                &EMPTY
            }
        }
    };
}
pub(crate) use empty_set;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PublishProperties;

    #[test]
    fn an_empty_set_is_not_stored_and_reads_as_empty() {
        let sparse = Sparse::new(PublishProperties::default());
        assert!(sparse.0.is_none());
        assert!(sparse.is_empty());
        assert_eq!(sparse.topic_alias, None);
        assert_eq!(sparse, Sparse::none());
    }

    #[test]
    fn a_clone_shares_the_set_until_one_side_writes() {
        let mut a = Sparse::new(PublishProperties {
            content_type: Some(Arc::from("text/plain")),
            ..PublishProperties::default()
        });
        let b = a.clone();
        assert!(Arc::ptr_eq(
            a.0.as_ref().expect("present"),
            b.0.as_ref().expect("present")
        ));
        a.make_mut().topic_alias = Some(3);
        assert_eq!(a.topic_alias, Some(3));
        assert_eq!(b.topic_alias, None, "the other clone is unchanged");
        assert_eq!(b.content_type.as_deref(), Some("text/plain"));
        assert_ne!(a, b);
    }

    #[test]
    fn get_mut_does_not_allocate_an_absent_set() {
        let mut sparse: Sparse<PublishProperties> = Sparse::none();
        assert!(sparse.get_mut().is_none());
        assert!(sparse.0.is_none());
        sparse.make_mut().message_expiry_interval = Some(9);
        assert_eq!(
            sparse.get_mut().and_then(|p| p.message_expiry_interval),
            Some(9)
        );
    }

    #[test]
    fn a_set_emptied_by_a_write_compares_equal_to_none() {
        let mut sparse: Sparse<PublishProperties> = Sparse::none();
        sparse.make_mut().topic_alias = Some(1);
        assert!(!sparse.is_empty());
        sparse.make_mut().topic_alias = None;
        assert!(sparse.is_empty());
        assert_eq!(sparse, Sparse::none());
        assert_eq!(sparse.into_inner(), PublishProperties::default());
    }
}

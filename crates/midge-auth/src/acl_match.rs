//! MQTT topic-filter algebra for ACL checks: matching, containment and overlap.
//!
//! All three honour MQTT-4.7.2-1: a filter whose first level is `+` or `#` does not match a
//! topic whose first level starts with `$`, so `#` never grants `$SYS/...`.

/// One level of a topic filter; a topic name is a filter made only of literals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level<'a> {
    Literal(&'a str),
    Plus,
    Hash,
}

/// Longest topic or filter MQTT can carry (a two-byte length prefix).
const MAX_LEN: usize = 65_535;

/// Whether `topic` is a valid MQTT topic name (non-empty, no wildcards, no NUL).
pub fn valid_topic(topic: &str) -> bool {
    !topic.is_empty() && topic.len() <= MAX_LEN && !topic.contains(['+', '#', '\0'])
}

/// Whether `filter` is a valid MQTT topic filter (`+` and `#` only as whole levels, `#` last).
pub fn valid_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.len() > MAX_LEN || filter.contains('\0') {
        return false;
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let is_last = levels.peek().is_none();
        match level {
            "+" => {}
            "#" if is_last => {}
            _ if level.contains(['+', '#']) => return false,
            _ => {}
        }
    }
    true
}

/// Whether the topic filter `filter` matches the topic name `topic`; false if either is invalid.
pub fn filter_matches_topic(filter: &str, topic: &str) -> bool {
    valid_filter(filter) && valid_topic(topic) && {
        let topic: Vec<&str> = topic.split('/').collect();
        matches(&levels(filter), &topic)
    }
}

/// Whether every topic matched by `inner` is also matched by `outer`; false if either is invalid.
pub fn filter_covers(outer: &str, inner: &str) -> bool {
    valid_filter(outer) && valid_filter(inner) && covers(&levels(outer), &levels(inner))
}

/// Whether some topic name is matched by both filters; false if either is invalid.
pub fn filters_overlap(a: &str, b: &str) -> bool {
    valid_filter(a) && valid_filter(b) && overlap(&levels(a), &levels(b))
}

/// Splits a filter that is already known to be valid.
pub(crate) fn levels(filter: &str) -> Vec<Level<'_>> {
    filter
        .split('/')
        .map(|level| match level {
            "+" => Level::Plus,
            "#" => Level::Hash,
            literal => Level::Literal(literal),
        })
        .collect()
}

fn is_dollar(level: &str) -> bool {
    level.starts_with('$')
}

/// `filter` against the levels of a valid topic name.
pub(crate) fn matches(filter: &[Level<'_>], topic: &[&str]) -> bool {
    for (i, level) in filter.iter().enumerate() {
        match level {
            // Reached only when every earlier level matched, so the topic has at least `i`
            // levels: `#` matches the rest, including none (`a/#` matches `a`).
            Level::Hash => return !(i == 0 && topic.first().is_some_and(|t| is_dollar(t))),
            Level::Plus => match topic.get(i) {
                Some(t) if !(i == 0 && is_dollar(t)) => {}
                _ => return false,
            },
            Level::Literal(l) => {
                if topic.get(i) != Some(l) {
                    return false;
                }
            }
        }
    }
    filter.len() == topic.len()
}

/// Whether the set of topics `outer` matches contains the set `inner` matches.
pub(crate) fn covers(outer: &[Level<'_>], inner: &[Level<'_>]) -> bool {
    let mut j = 0;
    loop {
        match (outer.get(j), inner.get(j)) {
            (Some(Level::Hash), Some(Level::Literal(l))) => return !(j == 0 && is_dollar(l)),
            (Some(Level::Hash), _) => return true,
            (None, None) => return true,
            (None, Some(_)) | (Some(_), None) => return false,
            // Inner `#` at the first level matches every non-`$` topic, which `+/#` also does;
            // deeper, inner `#` includes its parent level, which outer `+` cannot match.
            (Some(Level::Plus), Some(Level::Hash)) => {
                return j == 0 && outer.get(1) == Some(&Level::Hash)
            }
            (Some(Level::Literal(_)), Some(Level::Hash)) => return false,
            (Some(Level::Plus), Some(Level::Plus)) => {}
            (Some(Level::Plus), Some(Level::Literal(l))) => {
                if j == 0 && is_dollar(l) {
                    return false;
                }
            }
            (Some(Level::Literal(_)), Some(Level::Plus)) => return false,
            (Some(Level::Literal(a)), Some(Level::Literal(b))) => {
                if a != b {
                    return false;
                }
            }
        }
        j += 1;
    }
}

/// Whether at least one topic name is matched by both `a` and `b`.
pub(crate) fn overlap(a: &[Level<'_>], b: &[Level<'_>]) -> bool {
    let mut j = 0;
    loop {
        match (a.get(j), b.get(j)) {
            // `#` absorbs whatever the other filter still requires, and its parent level too.
            (Some(Level::Hash), other) | (other, Some(Level::Hash)) => {
                return !(j == 0 && matches!(other, Some(Level::Literal(l)) if is_dollar(l)));
            }
            (None, None) => return true,
            (None, Some(_)) | (Some(_), None) => return false,
            (Some(Level::Plus), Some(Level::Plus)) => {}
            (Some(Level::Plus), Some(Level::Literal(l)))
            | (Some(Level::Literal(l)), Some(Level::Plus)) => {
                if j == 0 && is_dollar(l) {
                    return false;
                }
            }
            (Some(Level::Literal(x)), Some(Level::Literal(y))) => {
                if x != y {
                    return false;
                }
            }
        }
        j += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity() {
        for ok in ["a", "/", "a//b", "$SYS/x", "a b"] {
            assert!(valid_topic(ok), "{ok}");
            assert!(valid_filter(ok), "{ok}");
        }
        for ok in ["#", "+", "a/+/b", "a/#", "+/+", "/#", "+/"] {
            assert!(valid_filter(ok), "{ok}");
            assert!(!valid_topic(ok), "{ok}");
        }
        for bad in ["", "a/#/b", "a#", "a+/b", "#/", "a/b#", "a\0b"] {
            assert!(!valid_filter(bad), "{bad:?}");
        }
        assert!(!valid_topic(""));
    }

    #[test]
    fn matching() {
        let table = [
            ("a/b", "a/b", true),
            ("a/b", "a/c", false),
            ("a/+", "a/b", true),
            ("a/+", "a", false),
            ("a/+", "a/b/c", false),
            ("a/+", "a/", true),
            ("a/#", "a", true),
            ("a/#", "a/b/c", true),
            ("a/#", "ab", false),
            ("#", "a/b", true),
            ("#", "/", true),
            ("+/+", "/", true),
            ("+", "/a", false),
            ("#", "$SYS/x", false),
            ("+/x", "$SYS/x", false),
            ("$SYS/#", "$SYS/x", true),
            ("$SYS/+", "$SYS/x", true),
            ("a/+/#", "a/$x/y", true),
            ("a/b", "a/b/", false),
        ];
        for (filter, topic, want) in table {
            assert_eq!(
                filter_matches_topic(filter, topic),
                want,
                "{filter} ~ {topic}"
            );
        }
        assert!(
            !filter_matches_topic("a/#", "a/#"),
            "a topic name cannot hold wildcards"
        );
    }

    #[test]
    fn containment() {
        let table = [
            ("#", "a/#", true),
            ("#", "#", true),
            ("#", "+/b", true),
            ("#", "$SYS/#", false),
            ("+/#", "#", true),
            ("a/#", "a", true),
            ("a/#", "a/#", true),
            ("a/#", "a/+/c", true),
            ("a/#", "#", false),
            ("a/+", "a/b", true),
            ("a/+", "a/+", true),
            ("a/+", "a/#", false),
            ("a/+", "a/b/c", false),
            ("a/+/#", "a/#", false),
            ("a/+/#", "a/b", true),
            ("a/b", "a/+", false),
            ("a/b", "a/b", true),
            ("a", "a/#", false),
            ("+", "$SYS", false),
            ("$SYS/#", "$SYS/broker/+", true),
            ("+/+", "+/b", true),
            ("+/b", "+/+", false),
        ];
        for (outer, inner, want) in table {
            assert_eq!(filter_covers(outer, inner), want, "{outer} ⊇ {inner}");
        }
    }

    #[test]
    fn overlapping() {
        let table = [
            ("a/#", "a", true),
            ("a/#", "#", true),
            ("a/+", "+/b", true),
            ("a/+", "b/+", false),
            ("a/+", "a/b/c", false),
            ("a/+/c", "a/#", true),
            ("#", "$SYS/#", false),
            ("+/#", "$SYS/x", false),
            ("$SYS/#", "$SYS/+", true),
            ("a", "a/b", false),
            ("a/b", "a/b", true),
            ("+", "+", true),
        ];
        for (a, b, want) in table {
            assert_eq!(filters_overlap(a, b), want, "{a} ∩ {b}");
            assert_eq!(filters_overlap(b, a), want, "{b} ∩ {a}");
        }
    }

    /// Checks `covers` and `overlap` against brute force over a small topic universe.
    #[test]
    fn algebra_agrees_with_brute_force() {
        let words = ["a", "b", "$s", ""];
        let mut topics: Vec<String> = Vec::new();
        for depth in 1..=3 {
            let mut acc = vec![String::new()];
            for level in 0..depth {
                acc = acc
                    .iter()
                    .flat_map(|prefix| {
                        words.iter().map(move |w| {
                            if level == 0 {
                                (*w).to_owned()
                            } else {
                                format!("{prefix}/{w}")
                            }
                        })
                    })
                    .collect();
            }
            topics.extend(acc);
        }
        let topics: Vec<String> = topics.into_iter().filter(|t| valid_topic(t)).collect();
        let filter_words = ["a", "$s", "+", "#"];
        let mut filters = Vec::new();
        for x in filter_words {
            filters.push(x.to_owned());
            for y in filter_words {
                filters.push(format!("{x}/{y}"));
            }
        }
        let filters: Vec<String> = filters.into_iter().filter(|f| valid_filter(f)).collect();
        // Filters ending below depth 3 can only be judged on topics no deeper than 2 levels
        // past them; with depth-2 filters and depth-3 topics the universe is enough.
        let matched =
            |f: &str| -> Vec<bool> { topics.iter().map(|t| filter_matches_topic(f, t)).collect() };
        for outer in &filters {
            let m_outer = matched(outer);
            for inner in &filters {
                let m_inner = matched(inner);
                let brute_cover = m_inner.iter().zip(&m_outer).all(|(i, o)| !i || *o);
                let brute_overlap = m_inner.iter().zip(&m_outer).any(|(i, o)| *i && *o);
                assert_eq!(
                    filter_covers(outer, inner),
                    brute_cover,
                    "{outer} ⊇ {inner}"
                );
                assert_eq!(
                    filters_overlap(outer, inner),
                    brute_overlap,
                    "{outer} ∩ {inner}"
                );
            }
        }
    }
}

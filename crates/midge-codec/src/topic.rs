//! Topic name and topic filter validation (4.7), shared by the codec and the broker core.

/// True if `name` is a valid topic name: non-empty, no `+` or `#`, no U+0000.
/// (UTF-8 validity is guaranteed by `&str`.)
pub fn is_valid_topic_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['+', '#', '\0'])
}

/// True if `filter` is a valid topic filter: non-empty, no U+0000, `#` only as the whole last
/// level, `+` only as a whole level. A `$share/{group}/{filter}` filter is valid if the group
/// is non-empty and has no `+`, `#` or `/`, and the inner filter is valid.
pub fn is_valid_topic_filter(filter: &str) -> bool {
    if let Some(rest) = filter.strip_prefix("$share/") {
        return match rest.split_once('/') {
            Some((group, inner)) => {
                !group.is_empty() && !group.contains(['+', '#']) && is_valid_plain_filter(inner)
            }
            None => false,
        };
    }
    is_valid_plain_filter(filter)
}

fn is_valid_plain_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.contains('\0') {
        return false;
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('#') && (level != "#" || levels.peek().is_some()) {
            return false;
        }
        if level.contains('+') && level != "+" {
            return false;
        }
    }
    true
}

/// True for the broker's own `$SYS` topics (`$SYS` and everything below it). Clients may not
/// publish to them; other `$` topics are ordinary topics that wildcards at the first level
/// just don't match (MQTT-4.7.2-1).
pub fn is_sys_topic(topic: &str) -> bool {
    topic == "$SYS" || topic.starts_with("$SYS/")
}

/// Splits a shared subscription filter `$share/{group}/{filter}` into `(group, filter)`.
/// Returns `None` for a non-shared filter.
pub fn split_shared(filter: &str) -> Option<(&str, &str)> {
    filter.strip_prefix("$share/")?.split_once('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        for ok in [
            "#",
            "+",
            "a/+/b",
            "a/#",
            "/",
            "+/+",
            "$share/g/a/#",
            "sport/tennis/#",
        ] {
            assert!(is_valid_topic_filter(ok), "{ok}");
        }
        for bad in [
            "",
            "a#",
            "a/#/b",
            "a+",
            "a/b+/c",
            "$share/g",
            "$share//a",
            "$share/g+/a",
            "a\0",
        ] {
            assert!(!is_valid_topic_filter(bad), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert!(is_valid_topic_name("a/b"));
        assert!(is_valid_topic_name("/"));
        assert!(!is_valid_topic_name(""));
        assert!(!is_valid_topic_name("a/+"));
        assert!(!is_valid_topic_name("a/#"));
    }
}

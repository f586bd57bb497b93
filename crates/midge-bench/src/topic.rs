//! Topic patterns: `%i` expands to the client index, `%c` to the client id, `%%` to `%`.

use std::fmt::Write as _;

/// A parsed topic (or topic filter) pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPattern {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Index,
    ClientId,
}

impl TopicPattern {
    /// Parses a pattern. An unknown `%x` sequence is kept literally.
    pub fn parse(pattern: &str) -> TopicPattern {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                text.push(c);
                continue;
            }
            let part = match chars.peek() {
                Some('i') => Part::Index,
                Some('c') => Part::ClientId,
                Some('%') => {
                    chars.next();
                    text.push('%');
                    continue;
                }
                _ => {
                    text.push('%');
                    continue;
                }
            };
            chars.next();
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(part);
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        TopicPattern { parts }
    }

    /// True when the pattern differs per client.
    pub fn is_per_client(&self) -> bool {
        self.parts.iter().any(|p| !matches!(p, Part::Text(_)))
    }

    /// The topic for client number `index` with client id `client_id`.
    pub fn expand(&self, index: u64, client_id: &str) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Index => {
                    let _ = write!(out, "{index}");
                }
                Part::ClientId => out.push_str(client_id),
            }
        }
        out
    }

    /// A filter that matches every topic this pattern can expand to: each level that holds a
    /// per-client placeholder becomes `+`. `bench/%i/data` gives `bench/+/data`.
    pub fn covering_filter(&self) -> String {
        let marked = self.expand_with_marker('\u{0}');
        marked
            .split('/')
            .map(|level| if level.contains('\u{0}') { "+" } else { level })
            .collect::<Vec<_>>()
            .join("/")
    }

    fn expand_with_marker(&self, marker: char) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Index | Part::ClientId => out.push(marker),
            }
        }
        out
    }
}

/// Wraps a filter in a shared-subscription group: `$share/GROUP/FILTER`.
pub fn shared_filter(group: &str, filter: &str) -> String {
    format!("$share/{group}/{filter}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_index_and_client_id() {
        let p = TopicPattern::parse("bench/%i/from/%c");
        assert!(p.is_per_client());
        assert_eq!(p.expand(7, "pub_7"), "bench/7/from/pub_7");
    }

    #[test]
    fn literal_and_escapes() {
        let p = TopicPattern::parse("a/%%/b%x/%");
        assert!(!p.is_per_client());
        assert_eq!(p.expand(1, "c"), "a/%/b%x/%");
        let plain = TopicPattern::parse("just/a/topic");
        assert_eq!(plain.expand(3, "x"), "just/a/topic");
    }

    #[test]
    fn placeholder_at_start_and_end() {
        let p = TopicPattern::parse("%i");
        assert_eq!(p.expand(42, ""), "42");
        let q = TopicPattern::parse("t%i");
        assert_eq!(q.expand(0, ""), "t0");
    }

    #[test]
    fn covering_filter_replaces_levels() {
        assert_eq!(
            TopicPattern::parse("bench/%i/data").covering_filter(),
            "bench/+/data"
        );
        assert_eq!(
            TopicPattern::parse("bench/t%i").covering_filter(),
            "bench/+"
        );
        assert_eq!(
            TopicPattern::parse("fixed/topic").covering_filter(),
            "fixed/topic"
        );
        assert_eq!(shared_filter("g", "bench/+"), "$share/g/bench/+");
    }
}

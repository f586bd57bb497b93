//! The topic filter of one ACL rule, with `%c` / `%u` placeholders for `pattern` rules.

use crate::acl_match::{valid_filter, Level};

/// One level of an ACL rule's filter before the client's identity is substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RuleLevel {
    Literal(String),
    Plus,
    Hash,
    /// `%c`: the client identifier, as one whole level.
    ClientId,
    /// `%u`: the username, as one whole level.
    Username,
}

/// The filter of a `topic` or `pattern` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AclFilter {
    levels: Vec<RuleLevel>,
}

impl AclFilter {
    /// Parses a rule's filter; `%c` and `%u` are placeholders only when `placeholders` is set
    /// (`pattern` lines), and must then be a whole level.
    pub(crate) fn parse(text: &str, placeholders: bool) -> Result<Self, String> {
        if !valid_filter(text) {
            return Err(format!("{text:?} is not a valid topic filter"));
        }
        let levels = text
            .split('/')
            .map(|level| match level {
                "+" => Ok(RuleLevel::Plus),
                "#" => Ok(RuleLevel::Hash),
                "%c" if placeholders => Ok(RuleLevel::ClientId),
                "%u" if placeholders => Ok(RuleLevel::Username),
                _ if placeholders && (level.contains("%c") || level.contains("%u")) => Err(
                    format!("{level:?}: %c and %u must be the only text in their topic level"),
                ),
                literal => Ok(RuleLevel::Literal(literal.to_owned())),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { levels })
    }

    /// The filter with the client's identity substituted, or `None` if it needs a username
    /// and the client has none (Mosquitto skips such patterns for anonymous clients).
    ///
    /// A substituted identity stays one level: a client id `a/b` never equals a topic level, so
    /// it cannot reach into another client's subtree.
    pub(crate) fn resolve<'a>(
        &'a self,
        client_id: &'a str,
        username: Option<&'a str>,
    ) -> Option<Vec<Level<'a>>> {
        self.levels
            .iter()
            .map(|level| match level {
                RuleLevel::Literal(l) => Some(Level::Literal(l)),
                RuleLevel::Plus => Some(Level::Plus),
                RuleLevel::Hash => Some(Level::Hash),
                RuleLevel::ClientId => Some(Level::Literal(client_id)),
                RuleLevel::Username => username.map(Level::Literal),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl_match::matches;

    #[test]
    fn placeholders_only_in_patterns() {
        let f = AclFilter::parse("dev/%c/%u/#", true).expect("valid");
        let resolved = f.resolve("c1", Some("u1")).expect("has username");
        assert!(matches(&resolved, &["dev", "c1", "u1", "x"]));
        assert!(!matches(&resolved, &["dev", "c2", "u1", "x"]));
        assert!(f.resolve("c1", None).is_none());

        let literal = AclFilter::parse("dev/%c", false).expect("valid");
        let resolved = literal.resolve("c1", None).expect("no username needed");
        assert!(matches(&resolved, &["dev", "%c"]));
        assert!(!matches(&resolved, &["dev", "c1"]));
    }

    #[test]
    fn identity_with_slash_stays_one_level() {
        let f = AclFilter::parse("users/%u/#", true).expect("valid");
        let resolved = f.resolve("c", Some("bob/x")).expect("has username");
        assert!(!matches(&resolved, &["users", "bob", "x", "y"]));
    }

    #[test]
    fn rejects_partial_placeholders_and_bad_filters() {
        assert!(AclFilter::parse("dev/x%c", true).is_err());
        assert!(AclFilter::parse("dev/%u-in", true).is_err());
        assert!(AclFilter::parse("dev/x%c", false).is_ok());
        assert!(AclFilter::parse("a/#/b", false).is_err());
        assert!(AclFilter::parse("a+", true).is_err());
    }
}

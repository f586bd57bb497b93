//! Mosquitto's `acl_file`: parsing and the allow/deny decision.
//!
//! Evaluation follows Mosquitto 2.0's default ACL check:
//! 1. The client's own list is consulted: the rules under its `user` section, or the rules
//!    before any `user` line if it has no username. A matching `deny` rule denies; otherwise a
//!    matching rule that grants the requested access allows.
//! 2. Otherwise the `pattern` rules (which apply to every client, wherever they appear) are
//!    consulted the same way, after `%c`/`%u` substitution. If any pattern rule exists and the
//!    username or client id contains `+` or `#`, access is denied outright, so a crafted identity
//!    cannot widen a pattern.
//! 3. Anything not allowed is denied.

use std::collections::HashMap;
use std::path::Path;

use crate::acl_filter::AclFilter;
use crate::acl_match::{covers, levels, matches, valid_filter, valid_topic, Level};
use crate::error::AuthError;

/// What a client wants to do with a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Receive messages on the topic (and subscribe to filters covering it).
    Read,
    /// Publish to the topic.
    Write,
}

/// The access word of a `topic` or `pattern` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AclRuleKind {
    /// `read`
    Read,
    /// `write`
    Write,
    /// `readwrite`, or no access word
    ReadWrite,
    /// `deny`: consulted before any grant in the same list
    Deny,
}

impl AclRuleKind {
    fn grants(self, access: Access) -> bool {
        matches!(
            (self, access),
            (Self::ReadWrite, _) | (Self::Read, Access::Read) | (Self::Write, Access::Write)
        )
    }
}

#[derive(Debug, Clone)]
struct Rule {
    kind: AclRuleKind,
    filter: AclFilter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Allow,
    Deny,
    NoMatch,
}

/// A parsed ACL file.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    /// `topic` rules before the first `user` line: for clients without a username.
    anonymous: Vec<Rule>,
    users: HashMap<String, Vec<Rule>>,
    /// `pattern` rules, for every client.
    patterns: Vec<Rule>,
}

impl Acl {
    /// Parses an ACL file's contents; an error names the 1-based line.
    pub fn parse(text: &str) -> Result<Self, AuthError> {
        let mut acl = Self::default();
        let mut current_user: Option<String> = None;
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let err = |reason: String| AuthError::AclFile { line, reason };
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let (keyword, rest) = split_word(trimmed);
            match keyword {
                "user" => {
                    if rest.is_empty() {
                        return Err(err("`user` line without a username".to_owned()));
                    }
                    acl.users.entry(rest.to_owned()).or_default();
                    current_user = Some(rest.to_owned());
                }
                "topic" | "pattern" => {
                    let is_pattern = keyword == "pattern";
                    let rule = parse_rule(rest, is_pattern).map_err(err)?;
                    if is_pattern {
                        acl.patterns.push(rule);
                    } else {
                        match &current_user {
                            Some(user) => acl.users.entry(user.clone()).or_default().push(rule),
                            None => acl.anonymous.push(rule),
                        }
                    }
                }
                other => {
                    return Err(err(format!(
                        "unknown keyword {other:?}: expected `user`, `topic` or `pattern`"
                    )))
                }
            }
        }
        Ok(acl)
    }

    /// Reads and parses the ACL file at `path`.
    pub fn load(path: &Path) -> Result<Self, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Whether the client may publish to (`Write`) or receive from (`Read`) the topic name
    /// `topic`. `username` is `None` for an anonymous client. A topic containing wildcards is
    /// not a topic name and is denied.
    pub fn check(
        &self,
        client_id: &str,
        username: Option<&str>,
        topic: &str,
        access: Access,
    ) -> bool {
        if !valid_topic(topic) {
            return false;
        }
        let topic: Vec<&str> = topic.split('/').collect();
        let hits = |filter: &[Level<'_>]| matches(filter, &topic);
        self.decide(client_id, username, access, &hits)
    }

    /// Whether the client may subscribe to `filter` (a `$share/<group>/` prefix is ignored).
    ///
    /// Mosquitto itself grants every SUBSCRIBE and only filters deliveries. Midge is stricter:
    /// the subscription is granted only if one read-granting rule covers the whole filter (every
    /// topic the filter can match), and no `deny` rule consulted before it covers the whole
    /// filter. A `deny` that covers only part of the filter does not refuse the subscription, so
    /// the server must still call [`Acl::check`] with [`Access::Read`] for each delivered
    /// message, exactly as Mosquitto does.
    pub fn check_subscribe(&self, client_id: &str, username: Option<&str>, filter: &str) -> bool {
        let Some(filter) = strip_shared(filter) else {
            return false;
        };
        if !valid_filter(filter) {
            return false;
        }
        let wanted = levels(filter);
        let hits = |rule: &[Level<'_>]| covers(rule, &wanted);
        self.decide(client_id, username, Access::Read, &hits)
    }

    fn decide(
        &self,
        client_id: &str,
        username: Option<&str>,
        access: Access,
        hits: &dyn Fn(&[Level<'_>]) -> bool,
    ) -> bool {
        let own = match username {
            Some(name) => self.users.get(name).map(Vec::as_slice),
            None => Some(self.anonymous.as_slice()),
        };
        match own.map(|rules| decide_list(rules, client_id, username, access, hits)) {
            Some(Decision::Allow) => return true,
            Some(Decision::Deny) => return false,
            Some(Decision::NoMatch) | None => {}
        }
        if self.patterns.is_empty() {
            return false;
        }
        let dangerous = |s: &str| s.contains(['+', '#']);
        if dangerous(client_id) || username.is_some_and(dangerous) {
            return false;
        }
        decide_list(&self.patterns, client_id, username, access, hits) == Decision::Allow
    }
}

/// Deny rules first, then grants for `access`, in file order within each.
fn decide_list(
    rules: &[Rule],
    client_id: &str,
    username: Option<&str>,
    access: Access,
    hits: &dyn Fn(&[Level<'_>]) -> bool,
) -> Decision {
    let hit = |rule: &Rule| {
        rule.filter
            .resolve(client_id, username)
            .is_some_and(|filter| hits(&filter))
    };
    let deny = rules
        .iter()
        .filter(|r| r.kind == AclRuleKind::Deny)
        .any(hit);
    if deny {
        return Decision::Deny;
    }
    let allow = rules.iter().filter(|r| r.kind.grants(access)).any(hit);
    if allow {
        Decision::Allow
    } else {
        Decision::NoMatch
    }
}

/// `[read|write|readwrite|deny] <filter>`: the filter may contain spaces only after an access
/// word, as Mosquitto documents.
fn parse_rule(rest: &str, is_pattern: bool) -> Result<Rule, String> {
    let keyword = if is_pattern { "pattern" } else { "topic" };
    let (first, after) = split_word(rest);
    let kind = match first {
        "read" => Some(AclRuleKind::Read),
        "write" => Some(AclRuleKind::Write),
        "readwrite" => Some(AclRuleKind::ReadWrite),
        "deny" => Some(AclRuleKind::Deny),
        _ => None,
    };
    let (kind, filter) = match kind {
        Some(_) if after.is_empty() => {
            return Err(format!("`{keyword} {first}` without a topic"));
        }
        Some(kind) => (kind, after),
        None if first.is_empty() => return Err(format!("`{keyword}` without a topic")),
        None if !after.is_empty() => {
            return Err(format!(
                "topic {rest:?} contains a space: put an access word before it \
                 (`{keyword} readwrite {rest}`)"
            ));
        }
        None => (AclRuleKind::ReadWrite, first),
    };
    let filter = AclFilter::parse(filter, is_pattern)?;
    Ok(Rule { kind, filter })
}

/// The first whitespace-separated word and the trimmed rest.
fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    match text.find(char::is_whitespace) {
        Some(at) => (&text[..at], text[at..].trim()),
        None => (text, ""),
    }
}

/// The filter inside `$share/<group>/<filter>`, the filter itself otherwise, or `None` for a
/// malformed shared subscription.
fn strip_shared(filter: &str) -> Option<&str> {
    let Some(rest) = filter.strip_prefix("$share/") else {
        return Some(filter);
    };
    let (group, inner) = rest.split_once('/')?;
    if group.is_empty() || group.contains(['+', '#']) || inner.is_empty() {
        return None;
    }
    Some(inner)
}

#[cfg(test)]
#[path = "acl_tests.rs"]
mod tests;

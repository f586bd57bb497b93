use super::*;

const ACL: &str = "\
# anonymous clients
topic read public/#
topic deny public/secret

user alice
topic sensors/#
topic read config/+
topic deny sensors/private/#
topic write log/alice
topic readwrite spaced topic/x
# spaces need the access word

user bob
topic read $SYS/#
topic read #

pattern readwrite devices/%c/#
pattern read users/%u/inbox
pattern deny users/%u/inbox/blocked
pattern write out/%u/%c

user alice
topic read extra/#
";

fn acl() -> Acl {
    Acl::parse(ACL).expect("parses")
}

#[test]
fn anonymous_rules_apply_only_without_username() {
    let acl = acl();
    assert!(acl.check("c", None, "public/news", Access::Read));
    assert!(!acl.check("c", None, "public/news", Access::Write));
    assert!(!acl.check("c", None, "public/secret", Access::Read));
    assert!(!acl.check("c", Some("alice"), "public/news", Access::Read));
    assert!(!acl.check("c", Some("nobody"), "public/news", Access::Read));
}

#[test]
fn user_rules_and_access_words() {
    let acl = acl();
    assert!(acl.check("c", Some("alice"), "sensors/t1", Access::Write));
    assert!(acl.check("c", Some("alice"), "sensors/t1", Access::Read));
    assert!(acl.check("c", Some("alice"), "config/a", Access::Read));
    assert!(!acl.check("c", Some("alice"), "config/a", Access::Write));
    assert!(!acl.check("c", Some("alice"), "config/a/b", Access::Read));
    assert!(acl.check("c", Some("alice"), "log/alice", Access::Write));
    assert!(!acl.check("c", Some("alice"), "log/alice", Access::Read));
    assert!(acl.check("c", Some("alice"), "spaced topic/x", Access::Read));
    // A second `user alice` section adds to the first.
    assert!(acl.check("c", Some("alice"), "extra/1", Access::Read));
    assert!(!acl.check("c", Some("bob"), "sensors/t1", Access::Write));
}

#[test]
fn deny_wins_over_broader_grant_in_the_same_list() {
    let acl = acl();
    assert!(!acl.check("c", Some("alice"), "sensors/private/x", Access::Read));
    assert!(!acl.check("c", Some("alice"), "sensors/private", Access::Write));
}

#[test]
fn dollar_topics_need_an_explicit_dollar_rule() {
    let acl = acl();
    assert!(acl.check("c", Some("bob"), "anything/at/all", Access::Read));
    assert!(acl.check("c", Some("bob"), "$SYS/broker/uptime", Access::Read));
    let only_hash = Acl::parse("user u\ntopic #\n").expect("parses");
    assert!(!only_hash.check("c", Some("u"), "$SYS/broker/uptime", Access::Read));
    assert!(!only_hash.check("c", Some("u"), "$share/x", Access::Write));
}

#[test]
fn patterns_apply_to_everyone_with_substitution() {
    let acl = acl();
    for user in [None, Some("alice"), Some("bob"), Some("carol")] {
        assert!(acl.check("dev1", user, "devices/dev1/temp", Access::Write));
        assert!(!acl.check("dev1", user, "devices/dev2/temp", Access::Write));
    }
    assert!(acl.check("c", Some("carol"), "users/carol/inbox", Access::Read));
    assert!(!acl.check("c", Some("carol"), "users/carol/inbox", Access::Write));
    assert!(!acl.check("c", Some("carol"), "users/dave/inbox", Access::Read));
    assert!(acl.check("c9", Some("carol"), "out/carol/c9", Access::Write));
    assert!(!acl.check("c9", Some("carol"), "out/carol/c8", Access::Write));
    // %u patterns never match anonymous clients, even for a literal "%u" level.
    assert!(!acl.check("c", None, "users/%u/inbox", Access::Read));
}

#[test]
fn user_list_decides_before_patterns() {
    // A pattern deny does not take back a user grant, and a user deny is final.
    let acl = Acl::parse(
        "user u\ntopic read a/#\ntopic deny b/#\npattern deny a/%u\npattern read b/%u\n",
    )
    .expect("parses");
    assert!(acl.check("c", Some("u"), "a/u", Access::Read));
    assert!(!acl.check("c", Some("u"), "b/u", Access::Read));
    // A pattern deny does stop another user's pattern grant.
    let acl = Acl::parse("pattern read a/#\npattern deny a/%u\n").expect("parses");
    assert!(acl.check("c", Some("v"), "a/x", Access::Read));
    assert!(!acl.check("c", Some("v"), "a/v", Access::Read));
}

#[test]
fn wildcard_identities_are_denied_when_patterns_exist() {
    let acl = acl();
    assert!(!acl.check("dev+", Some("carol"), "devices/dev+/x", Access::Write));
    assert!(!acl.check("c", Some("ca#"), "users/ca#/inbox", Access::Read));
    // ...but the user's own list is still consulted first, as in Mosquitto.
    let acl = Acl::parse("user a#\ntopic x\npattern read %u\n").expect("parses");
    assert!(acl.check("c", Some("a#"), "x", Access::Read));
}

#[test]
fn empty_file_and_invalid_topics_deny() {
    let empty = Acl::parse("# nothing\n\n").expect("parses");
    assert!(!empty.check("c", None, "a", Access::Read));
    assert!(!empty.check("c", Some("u"), "a", Access::Write));
    let acl = acl();
    assert!(!acl.check("c", Some("bob"), "a/#", Access::Read));
    assert!(!acl.check("c", Some("bob"), "", Access::Read));
}

#[test]
fn subscribe_needs_a_covering_read_rule() {
    let acl = acl();
    let table = [
        (Some("alice"), "sensors/#", true),
        (Some("alice"), "sensors/+/t", true),
        (Some("alice"), "config/+", true),
        (Some("alice"), "config/#", false),
        (Some("alice"), "log/alice", false),         // write-only
        (Some("alice"), "sensors/private/#", false), // wholly denied
        (Some("alice"), "sensors/private/x", false),
        (Some("alice"), "#", false),
        (Some("bob"), "#", true),
        (Some("bob"), "$SYS/#", true),
        (Some("bob"), "$share/g/x/y", true),
        (Some("bob"), "$share//x", false),
        (Some("bob"), "$share/g", false),
        (Some("bob"), "a/#/b", false),
        (None, "public/#", true), // partly denied: deliveries are filtered
        (None, "public/secret", false),
        (Some("carol"), "users/carol/inbox", true),
        (Some("carol"), "users/+/inbox", false),
        (Some("carol"), "devices/dev1/#", false),
    ];
    for (user, filter, want) in table {
        assert_eq!(
            acl.check_subscribe("dev9", user, filter),
            want,
            "{user:?} {filter}"
        );
    }
    assert!(acl.check_subscribe("dev1", Some("carol"), "devices/dev1/#"));
    assert!(acl.check_subscribe("dev1", None, "devices/dev1/+/x"));
}

#[test]
fn parse_errors_name_the_line() {
    let cases = [
        ("topic read a\nuser\n", 2, "without a username"),
        ("\n\ntopic\n", 3, "without a topic"),
        ("topic deny\n", 1, "without a topic"),
        ("topic a b\n", 1, "contains a space"),
        ("topic read a/#/b\n", 1, "not a valid topic filter"),
        (
            "user u\npattern read x/pre%u\n",
            2,
            "only text in their topic level",
        ),
        ("# c\nallow read x\n", 2, "unknown keyword"),
    ];
    for (text, line, needle) in cases {
        let err = Acl::parse(text).expect_err(text).to_string();
        assert!(err.starts_with(&format!("acl file line {line}:")), "{err}");
        assert!(err.contains(needle), "{err}");
    }
}

#[test]
fn tolerates_crlf_tabs_and_indentation() {
    let acl = Acl::parse("user\tu\r\n  topic\tread   a/b  \r\n").expect("parses");
    assert!(acl.check("c", Some("u"), "a/b", Access::Read));
    assert!(!acl.check("c", Some("u"), "a/b", Access::Write));
}

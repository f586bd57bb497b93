//! The same ACL file loaded by `mosquitto` and by `Acl::parse` gives the same decisions.
//!
//! Read access is probed with a retained message: the admin publishes one to every probed
//! topic, then the probing client subscribes to the topic and either receives it (allowed) or
//! times out (denied; Mosquitto grants the SUBSCRIBE but withholds the message). Write access is
//! probed by publishing a retained message with a fresh payload at QoS 1 and asking the admin
//! whether the retained payload changed.

mod support;

use std::collections::BTreeMap;
use std::thread;

use midge_auth::{Access, Acl, PasswordFile};
use support::{tools, Broker, Tools};
use Access::{Read as R, Write as W};

const ACL: &str = "\
# anonymous clients
topic read public/#
topic deny public/secret

user alice
topic sensors/#
topic read config/+
topic deny sensors/private/#
topic write log/alice

user bob
topic read #
topic read $app/#

user dave
topic read #

user admin
topic readwrite #
topic readwrite $app/#

pattern readwrite devices/%c/#
pattern read users/%u/inbox
pattern write out/%u/%c
";

const USERS: [&str; 5] = ["alice", "bob", "carol", "dave", "admin"];

fn password(user: &str) -> String {
    format!("{user}-pw")
}

struct Row {
    user: Option<&'static str>,
    /// `None`: a client id of its own, so probes can run side by side.
    client_id: Option<&'static str>,
    topic: &'static str,
    access: Access,
    expected: bool,
}

const fn row(
    user: Option<&'static str>,
    client_id: Option<&'static str>,
    topic: &'static str,
    access: Access,
    expected: bool,
) -> Row {
    Row {
        user,
        client_id,
        topic,
        access,
        expected,
    }
}

const ROWS: &[Row] = &[
    row(None, None, "public/news", R, true),
    row(None, None, "public/secret", R, false),
    row(None, None, "public/news", W, false),
    row(Some("alice"), None, "sensors/t1", R, true),
    row(Some("alice"), None, "sensors/t1", W, true),
    row(Some("alice"), None, "sensors/private/x", R, false),
    row(Some("alice"), None, "sensors/private/x", W, false),
    row(Some("alice"), None, "config/a", R, true),
    row(Some("alice"), None, "config/a", W, false),
    row(Some("alice"), None, "config/a/b", R, false),
    row(Some("alice"), None, "log/alice", W, true),
    row(Some("alice"), None, "log/alice", R, false),
    row(Some("alice"), None, "public/news", R, false),
    row(Some("bob"), None, "anything/here", R, true),
    row(Some("bob"), None, "anything/here", W, false),
    row(Some("bob"), None, "$app/x", R, true),
    row(Some("dave"), None, "$app/x", R, false),
    row(Some("dave"), None, "public/news", R, true),
    row(Some("carol"), Some("dev7"), "devices/dev7/temp", W, true),
    row(Some("carol"), Some("dev7"), "devices/dev8/temp", W, false),
    row(Some("carol"), Some("dev7"), "users/carol/inbox", R, true),
    row(Some("carol"), Some("dev7"), "users/alice/inbox", R, false),
    row(Some("carol"), Some("dev7"), "out/carol/dev7", W, true),
    row(Some("carol"), Some("dev8"), "out/carol/dev7", W, false),
    row(None, Some("dev9"), "devices/dev9/x", R, true),
    row(None, None, "users/%u/inbox", R, false),
];

#[test]
fn acl_decisions_match_mosquitto() {
    let Some(tools) = tools("acl_decisions_match_mosquitto") else {
        return;
    };
    let acl = Acl::parse(ACL).expect("ACL parses");
    for (i, r) in ROWS.iter().enumerate() {
        let id = client_id(i, r);
        assert_eq!(
            acl.check(&id, r.user, r.topic, r.access),
            r.expected,
            "midge: {:?} {id} {} {:?}",
            r.user,
            r.topic,
            r.access
        );
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let mut passwords = PasswordFile::new();
    for user in USERS {
        passwords.set(user, &password(user)).expect("valid user");
    }
    let password_path = dir.path().join("passwd");
    let acl_path = dir.path().join("acl");
    std::fs::write(&password_path, passwords.to_string()).expect("writing passwd");
    std::fs::write(&acl_path, ACL).expect("writing acl");
    let broker = Broker::start(&tools, dir.path(), &password_path, Some(&acl_path), true);

    // Every probed topic holds a retained message, so every probe ends without waiting out
    // its timeout unless the ACL withholds the message.
    let mut topics: Vec<&str> = ROWS.iter().map(|r| r.topic).collect();
    topics.sort_unstable();
    topics.dedup();
    for topic in &topics {
        let out = as_admin(
            &broker,
            &tools,
            &["-t", topic, "-m", "seed", "-r", "-q", "1"],
            true,
        );
        assert!(out.success(), "seeding {topic}: {out:?}");
    }

    let mut mosquitto = vec![None; ROWS.len()];
    // Reads run side by side, except rows sharing a client id, which would take each other over.
    let mut by_client: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in ROWS.iter().enumerate().filter(|(_, r)| r.access == R) {
        by_client.entry(client_id(i, r)).or_default().push(i);
    }
    thread::scope(|scope| {
        let handles: Vec<_> = by_client
            .values()
            .map(|rows| {
                let (broker, tools) = (&broker, &tools);
                scope.spawn(move || {
                    rows.iter()
                        .map(|&i| (i, probe_read(broker, tools, i, &ROWS[i])))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in handles {
            for (i, allowed) in handle.join().expect("probe thread") {
                mosquitto[i] = Some(allowed);
            }
        }
    });
    for (i, r) in ROWS.iter().enumerate().filter(|(_, r)| r.access == W) {
        mosquitto[i] = Some(probe_write(&broker, &tools, i, r));
    }

    let mut mismatches = Vec::new();
    for (i, r) in ROWS.iter().enumerate() {
        let theirs = mosquitto[i].expect("every row probed");
        if theirs != r.expected {
            mismatches.push(format!(
                "{:?} as {} {:?} {}: mosquitto {theirs}, midge {}",
                r.user,
                client_id(i, r),
                r.access,
                r.topic,
                r.expected
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{}\n--- broker log ---\n{}",
        mismatches.join("\n"),
        broker.log_text()
    );
}

fn client_id(i: usize, r: &Row) -> String {
    r.client_id
        .map_or_else(|| format!("probe{i}"), str::to_owned)
}

fn credentials(user: Option<&str>) -> Vec<String> {
    match user {
        Some(user) => vec!["-u".into(), user.into(), "-P".into(), password(user)],
        None => Vec::new(),
    }
}

fn as_admin(broker: &Broker, tools: &Tools, args: &[&str], publish: bool) -> support::Outcome {
    let pw = password("admin");
    let mut all = vec!["-u", "admin", "-P", &pw];
    all.extend_from_slice(args);
    if publish {
        broker.publish(tools, &all)
    } else {
        broker.subscribe(tools, &all)
    }
}

fn probe_read(broker: &Broker, tools: &Tools, i: usize, r: &Row) -> bool {
    let id = client_id(i, r);
    let creds = credentials(r.user);
    let mut args: Vec<&str> = creds.iter().map(String::as_str).collect();
    args.extend(["-i", &id, "-t", r.topic, "-C", "1", "-W", "3"]);
    let out = broker.subscribe(tools, &args);
    match out.code {
        Some(0) => true,
        // mosquitto_sub's exit code for -W expiring.
        Some(27) => false,
        _ => panic!(
            "read probe {i} failed to run: {out:?}\n{}",
            broker.log_text()
        ),
    }
}

fn probe_write(broker: &Broker, tools: &Tools, i: usize, r: &Row) -> bool {
    let id = client_id(i, r);
    let payload = format!("written-by-probe-{i}");
    let creds = credentials(r.user);
    let mut args: Vec<&str> = creds.iter().map(String::as_str).collect();
    args.extend(["-i", &id, "-t", r.topic, "-m", &payload, "-r", "-q", "1"]);
    let out = broker.publish(tools, &args);
    assert!(out.code.is_some(), "write probe {i} hung: {out:?}");
    let seen = as_admin(broker, tools, &["-t", r.topic, "-C", "1", "-W", "3"], false);
    assert!(seen.success(), "admin could not read {}: {seen:?}", r.topic);
    seen.stdout.trim_end() == payload
}

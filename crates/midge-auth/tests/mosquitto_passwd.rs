//! Password files against the real Mosquitto: files written by `mosquitto_passwd` verify in
//! Midge, and files written by Midge let clients into `mosquitto`.

mod support;

use std::process::Command;

use midge_auth::{PasswordFile, PasswordHash};
use support::{tools, Broker, Tools};

const USERS: [(&str, &str); 3] = [
    ("alice", "s3cret"),
    ("bob", "p@ss:w0rd with spaces"),
    ("ünïcode", "pässwörd"),
];

fn mosquitto_passwd(tools: &Tools, args: &[&str]) {
    let outcome = support::run(Command::new(&tools.passwd).args(args));
    assert!(outcome.success(), "mosquitto_passwd {args:?}: {outcome:?}");
}

#[test]
fn files_from_mosquitto_passwd_verify_in_both_hash_forms() {
    let Some(tools) = tools("files_from_mosquitto_passwd_verify_in_both_hash_forms") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    for (form, prefix) in [("sha512", "$6$"), ("sha512-pbkdf2", "$7$101$")] {
        let path = dir.path().join(format!("{form}.passwd"));
        let file = path.to_str().expect("utf-8 path");
        for (i, (user, password)) in USERS.iter().enumerate() {
            let mut args = vec!["-H", form, "-b", file, user, password];
            if i == 0 {
                args.insert(0, "-c");
            }
            mosquitto_passwd(&tools, &args);
        }
        let text = std::fs::read_to_string(&path).expect("reading file");
        let parsed = PasswordFile::load(&path).expect("mosquitto_passwd output parses");
        for (user, password) in USERS {
            let hash = parsed.hash(user).expect("user present").to_string();
            assert!(hash.starts_with(prefix), "{form}: {hash}");
            assert!(
                parsed.verify(user, password),
                "{form}: {user} right password"
            );
            assert!(
                !parsed.verify(user, "wrong"),
                "{form}: {user} wrong password"
            );
            assert!(
                !parsed.verify(user, &password[1..]),
                "{form}: {user} truncated"
            );
        }
        assert!(!parsed.verify("nobody", "s3cret"));
        assert_eq!(parsed.to_string(), text, "{form}: round trip");
    }
}

#[test]
fn mosquitto_passwd_can_edit_a_midge_file() {
    let Some(tools) = tools("mosquitto_passwd_can_edit_a_midge_file") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("passwd");
    let mut file = PasswordFile::new();
    file.set("alice", "one").expect("valid user");
    file.set("bob", "two").expect("valid user");
    std::fs::write(&path, file.to_string()).expect("writing");

    let file_arg = path.to_str().expect("utf-8 path");
    mosquitto_passwd(&tools, &["-b", file_arg, "carol", "three"]);
    mosquitto_passwd(&tools, &["-D", file_arg, "alice"]);

    let edited = PasswordFile::load(&path).expect("parses");
    assert_eq!(edited.usernames().collect::<Vec<_>>(), ["bob", "carol"]);
    assert!(edited.verify("bob", "two"));
    assert!(edited.verify("carol", "three"));
    assert!(!edited.verify("alice", "one"));
}

#[test]
fn mosquitto_accepts_a_midge_written_password_file() {
    let Some(tools) = tools("mosquitto_accepts_a_midge_written_password_file") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("passwd");
    let mut file = PasswordFile::parse("# written by midge-auth\n\n").expect("comment parses");
    for (user, password) in USERS {
        file.set(user, password).expect("valid user");
    }
    // A legacy $6$ entry, as `midge passwd` may keep from an old Mosquitto file.
    file.set_hash(
        "legacy",
        PasswordHash::sha512_with_salt("old-pw", vec![9; 12]),
    )
    .expect("valid user");
    std::fs::write(&path, file.to_string()).expect("writing");

    let broker = Broker::start(&tools, dir.path(), &path, None, false);
    let publish = |user: Option<&str>, password: Option<&str>| {
        let mut args = vec!["-t", "probe/login", "-m", "x", "-q", "1"];
        if let Some(user) = user {
            args.extend(["-u", user]);
        }
        if let Some(password) = password {
            args.extend(["-P", password]);
        }
        broker.publish(&tools, &args)
    };
    for (user, password) in USERS.iter().copied().chain([("legacy", "old-pw")]) {
        let right = publish(Some(user), Some(password));
        assert!(
            right.success(),
            "{user} with the right password: {right:?}\n{}",
            broker.log_text()
        );
        let wrong = publish(Some(user), Some("not-it"));
        assert!(!wrong.success(), "{user} with a wrong password was let in");
    }
    assert!(!publish(Some("nobody"), Some("s3cret")).success());
    assert!(!publish(None, None).success(), "anonymous is off");
    assert!(!publish(Some("alice"), None).success(), "password required");
}

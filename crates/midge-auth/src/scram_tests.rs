use std::collections::HashMap;

use super::*;
use crate::scram_message::encode_saslname;

/// A SCRAM-SHA-256 client written from RFC 5802 §3 and §7, independent of the server code
/// except for the shared HMAC helper.
struct Client {
    username: String,
    password: String,
    nonce: String,
    client_first_bare: String,
    server_signature: Option<[u8; KEY_LEN]>,
}

impl Client {
    fn new(username: &str, password: &str, nonce: &str) -> Self {
        Self {
            username: username.to_owned(),
            password: password.to_owned(),
            nonce: nonce.to_owned(),
            client_first_bare: String::new(),
            server_signature: None,
        }
    }

    fn first(&mut self) -> String {
        self.client_first_bare = format!("n={},r={}", encode_saslname(&self.username), self.nonce);
        format!("n,,{}", self.client_first_bare)
    }

    fn last(&mut self, server_first: &str) -> String {
        let mut attrs = server_first.split(',');
        let nonce = attrs.next().and_then(|a| a.strip_prefix("r=")).expect("r=");
        let salt = attrs.next().and_then(|a| a.strip_prefix("s=")).expect("s=");
        let iterations = attrs.next().and_then(|a| a.strip_prefix("i=")).expect("i=");
        assert!(
            nonce.starts_with(&self.nonce),
            "server must extend our nonce"
        );
        let salt = STANDARD.decode(salt).expect("salt is base64");
        let iterations: u32 = iterations.parse().expect("i is a number");

        let mut salted = [0u8; KEY_LEN];
        pbkdf2::pbkdf2_hmac::<Sha256>(self.password.as_bytes(), &salt, iterations, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key: [u8; KEY_LEN] = Sha256::digest(client_key).into();
        let without_proof = format!("c={},r={nonce}", STANDARD.encode("n,,"));
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hmac(&salted, b"Server Key");
        self.server_signature = Some(hmac(&server_key, auth_message.as_bytes()));
        format!("{without_proof},p={}", STANDARD.encode(proof))
    }

    fn server_is_genuine(&self, server_final: &str) -> bool {
        let expected = self.server_signature.expect("last() ran");
        server_final == format!("v={}", STANDARD.encode(expected))
    }
}

fn server_with(users: &[(&str, &str)]) -> ScramSha256<HashMap<String, ScramCredentials>> {
    let store = users
        .iter()
        .map(|(u, p)| ((*u).to_owned(), ScramCredentials::new(p)))
        .collect();
    ScramSha256::new(store)
}

fn continue_data(step: AuthStep) -> (String, AuthState) {
    match step {
        AuthStep::Continue { data, state } => (String::from_utf8(data).expect("utf8"), state),
        other => panic!("expected Continue, got {other:?}"),
    }
}

/// Runs a whole exchange; returns the final step and the client for checking the server.
fn exchange(
    server: &ScramSha256<HashMap<String, ScramCredentials>>,
    connect_username: Option<&str>,
    client: &mut Client,
) -> AuthStep {
    let (server_first, state) =
        continue_data(server.start(connect_username, client.first().as_bytes()));
    let last = client.last(&server_first);
    server.next(state, last.as_bytes())
}

const RFC7677_SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
const RFC7677_CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const RFC7677_SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const RFC7677_SERVER_FIRST: &str = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
    s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const RFC7677_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
    p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const RFC7677_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

fn rfc7677_server() -> ScramSha256<HashMap<String, ScramCredentials>> {
    let salt = STANDARD.decode(RFC7677_SALT).expect("base64");
    let store = HashMap::from([(
        "user".to_owned(),
        ScramCredentials::derive("pencil", salt, 4096),
    )]);
    ScramSha256::new(store).with_nonce_source(|| RFC7677_SERVER_NONCE.to_owned())
}

#[test]
fn server_reproduces_rfc7677_vector() {
    let server = rfc7677_server();
    assert_eq!(server.name(), "SCRAM-SHA-256");
    let (server_first, state) =
        continue_data(server.start(None, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"));
    assert_eq!(server_first, RFC7677_SERVER_FIRST);
    match server.next(state, RFC7677_CLIENT_FINAL.as_bytes()) {
        AuthStep::Success { data, username } => {
            assert_eq!(data, RFC7677_SERVER_FINAL.as_bytes());
            assert_eq!(username, "user");
        }
        other => panic!("expected Success, got {other:?}"),
    }
}

#[test]
fn test_client_reproduces_rfc7677_vector() {
    let mut client = Client::new("user", "pencil", RFC7677_CLIENT_NONCE);
    assert_eq!(client.first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    assert_eq!(client.last(RFC7677_SERVER_FIRST), RFC7677_CLIENT_FINAL);
    assert!(client.server_is_genuine(RFC7677_SERVER_FINAL));
}

#[test]
fn full_exchange_with_random_nonces() {
    let server = server_with(&[("alice", "correct horse"), ("b,o=b", "pw")]);
    for (user, connect_user) in [("alice", Some("alice")), ("alice", None), ("b,o=b", None)] {
        let password = if user == "alice" {
            "correct horse"
        } else {
            "pw"
        };
        let mut client = Client::new(user, password, "clientnonce123");
        match exchange(&server, connect_user, &mut client) {
            AuthStep::Success { data, username } => {
                assert_eq!(username, user);
                assert!(client.server_is_genuine(std::str::from_utf8(&data).expect("utf8")));
            }
            other => panic!("{user}: expected Success, got {other:?}"),
        }
    }
}

#[test]
fn wrong_password_and_unknown_user_fail_alike() {
    let server = server_with(&[("alice", "right")]);
    let mut wrong = Client::new("alice", "wrong", "n1");
    let step = exchange(&server, None, &mut wrong);
    assert!(
        matches!(step, AuthStep::Failure(AuthFailure::BadCredentials)),
        "{step:?}"
    );

    // An unknown user gets a plausible, stable salt and fails only at the proof.
    let first = |server: &ScramSha256<_>| continue_data(server.start(None, b"n,,n=mallory,r=n2")).0;
    let a = first(&server);
    let b = first(&server);
    let salt = |s: &str| s.split(',').nth(1).map(str::to_owned);
    assert_eq!(salt(&a), salt(&b));
    assert!(a.ends_with(",i=4096"));
    let mut mallory = Client::new("mallory", "guess", "n2");
    let step = exchange(&server, None, &mut mallory);
    assert!(
        matches!(step, AuthStep::Failure(AuthFailure::BadCredentials)),
        "{step:?}"
    );
}

#[test]
fn protocol_violations_are_rejected() {
    let server = server_with(&[("alice", "pw")]);
    let rejected = |step: AuthStep| matches!(step, AuthStep::Failure(AuthFailure::Rejected(_)));

    assert!(rejected(server.start(None, b"p=tls-unique,,n=alice,r=x")));
    assert!(rejected(server.start(None, &[0xff, 0xfe])));
    assert!(rejected(server.start(None, b"garbage")));
    assert!(rejected(server.start(Some("bob"), b"n,,n=alice,r=x")));
    assert!(rejected(
        server.next(AuthState::new(7u8), b"c=biws,r=x,p=AAAA")
    ));

    // A client-final that changes the nonce or the channel binding.
    let mut client = Client::new("alice", "pw", "abc");
    let (server_first, state) = continue_data(server.start(None, client.first().as_bytes()));
    let last = client.last(&server_first).replacen(",r=abc", ",r=abd", 1);
    assert!(rejected(server.next(state, last.as_bytes())));

    let (server_first, state) = continue_data(server.start(None, client.first().as_bytes()));
    let last = client.last(&server_first).replacen("c=biws", "c=eSws", 1);
    assert!(rejected(server.next(state, last.as_bytes())));

    // A truncated proof is a bad credential, not a crash.
    let (server_first, state) = continue_data(server.start(None, client.first().as_bytes()));
    let last = client.last(&server_first);
    let (without_proof, _) = last.rsplit_once(",p=").expect("has proof");
    let short = format!("{without_proof},p=AAAA");
    assert!(matches!(
        server.next(state, short.as_bytes()),
        AuthStep::Failure(AuthFailure::BadCredentials)
    ));
}

#[test]
fn invalid_nonce_source_is_rejected_not_sent() {
    let server = server_with(&[("alice", "pw")]).with_nonce_source(|| "has,comma".to_owned());
    assert!(matches!(
        server.start(None, b"n,,n=alice,r=x"),
        AuthStep::Failure(AuthFailure::Rejected(_))
    ));
}

//! `deploy/sandbox.toml` stays a valid configuration with the advertised port matrix.

use midge_server::{Config, ConfigOverrides, ListenerProtocol};
use std::collections::HashMap;
use std::path::Path;

#[test]
fn sandbox_config_loads_with_the_test_mosquitto_org_port_matrix() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/sandbox.toml");
    let config = Config::load(
        Some(&path),
        HashMap::<String, String>::new(),
        &ConfigOverrides::default(),
    )
    .expect("deploy/sandbox.toml loads");
    assert_eq!(config.listener.port, 1883);
    assert!(config.listener.allow_anonymous);
    let ports: Vec<(u16, ListenerProtocol, bool, bool)> = config
        .listeners
        .values()
        .map(|l| (l.port, l.protocol, l.allow_anonymous, l.require_certificate))
        .collect();
    let mut ports = ports;
    ports.sort_by_key(|p| p.0);
    assert_eq!(
        ports,
        vec![
            (1884, ListenerProtocol::Mqtt, false, false),
            (8080, ListenerProtocol::Ws, true, false),
            (8081, ListenerProtocol::Wss, true, false),
            (8883, ListenerProtocol::Tls, true, false),
            (8884, ListenerProtocol::Tls, true, true),
        ]
    );
    assert!(config.broker.max_packet_size < midge_codec::MAX_PACKET_SIZE);
}

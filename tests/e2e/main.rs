//! End-to-end tests: a real `midge` process per test, real sockets, real clients
//! (rumqttc, paho-mqtt, mosquitto_pub/mosquitto_sub) and a raw-packet client for bad input.

mod bad_input;
mod bench_tool;
mod cluster;
mod cluster_routing;
mod cluster_sessions;
mod compose;
mod connect;
mod durability;
mod enhanced_auth;
mod guards;
mod guards_more;
mod harness;
mod helm;
mod metrics;
mod mosquitto_clients;
mod ops;
mod paho;
mod parked;
mod qos;
mod retained;
mod retained_bulk;
mod sandbox;
mod security;
mod security_more;
mod session;
mod shared;
mod sys;
mod v5_properties;
mod websocket;
mod will;

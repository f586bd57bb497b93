//! End-to-end tests: a real `midge` process per test, real sockets, real clients
//! (rumqttc, paho-mqtt, mosquitto_pub/mosquitto_sub) and a raw-packet client for bad input.

mod harness;
mod connect;
mod mosquitto_clients;
mod paho;
mod qos;
mod retained;
mod will;
mod session;
mod shared;
mod v5_properties;
mod bad_input;
mod sys;

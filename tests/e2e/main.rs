//! End-to-end tests: a real `midge` process per test, real sockets, real clients
//! (rumqttc, paho-mqtt, mosquitto_pub/mosquitto_sub) and a raw-packet client for bad input.

mod bad_input;
mod connect;
mod durability;
mod harness;
mod mosquitto_clients;
mod paho;
mod qos;
mod retained;
mod session;
mod shared;
mod sys;
mod v5_properties;
mod will;

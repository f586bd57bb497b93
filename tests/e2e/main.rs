//! End-to-end tests: a real `midge` process per test, real sockets, real clients
//! (rumqttc, paho-mqtt, mosquitto_pub/mosquitto_sub) and a raw-packet client for bad input.

mod harness;

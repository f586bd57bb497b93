//! Broker behaviour tests: drive `Event`s, assert on `Action`s. Each test cites the normative
//! statements it checks (v5 numbering unless marked 3.1.1).

pub(crate) mod harness;

mod access;
mod cluster;
mod connect;
mod durable;
mod durable_replay;
mod guards;
mod keepalive;
mod limits;
mod qos;
mod retained;
mod retained_replay;
mod routing;
mod session;
mod shared;
mod stats;
mod subscribe;
mod sys;
mod will;

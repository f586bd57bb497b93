//! Per-address connection guards: how many connections one IP address may hold open
//! (`limits.max_connections_per_ip`) and open per second (`limits.max_connection_rate_per_ip`).
//! Checked at accept, before any handshake, so a flood from one address costs little.

use crate::guard_counters::Guard;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The rate window.
const WINDOW: Duration = Duration::from_secs(1);
/// Past this many tracked addresses, idle ones are forgotten on the next admission.
const TIDY_ABOVE: usize = 10_000;

/// One address's open connections and recent arrivals.
#[derive(Debug, Clone, Copy)]
struct Entry {
    open: usize,
    window_start: Instant,
    in_window: u32,
}

/// The guards' limits (0: off) and per-address state.
#[derive(Debug, Default)]
pub(crate) struct IpGuard {
    max_per_ip: AtomicUsize,
    max_rate: AtomicU32,
    state: Mutex<HashMap<IpAddr, Entry>>,
}

/// An admitted connection's place in its address's count, given back when dropped.
#[derive(Debug)]
pub(crate) struct IpSlot {
    /// Boxed: without per-address limits (the default) there is none, and every connection
    /// would carry its size.
    guard: Option<Box<(Arc<IpGuard>, IpAddr)>>,
}

impl IpGuard {
    /// A guard with the given limits (0 turns one off).
    pub(crate) fn new(max_per_ip: usize, max_rate: u32) -> Arc<IpGuard> {
        let guard = Arc::new(IpGuard::default());
        guard.set_limits(max_per_ip, max_rate);
        guard
    }

    /// Changes the limits (reload); connections already open stay open.
    pub(crate) fn set_limits(&self, max_per_ip: usize, max_rate: u32) {
        self.max_per_ip.store(max_per_ip, Ordering::Relaxed);
        self.max_rate.store(max_rate, Ordering::Relaxed);
    }

    /// Admits a connection from `ip` at `now`, or says which guard refuses it.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr, now: Instant) -> Result<IpSlot, Guard> {
        let max_per_ip = self.max_per_ip.load(Ordering::Relaxed);
        let max_rate = self.max_rate.load(Ordering::Relaxed);
        if max_per_ip == 0 && max_rate == 0 {
            return Ok(IpSlot { guard: None });
        }
        let mut state = self.state.lock();
        if state.len() > TIDY_ABOVE {
            state.retain(|_, e| e.open > 0 || now.duration_since(e.window_start) < WINDOW);
        }
        let entry = state.entry(ip).or_insert(Entry {
            open: 0,
            window_start: now,
            in_window: 0,
        });
        if now.duration_since(entry.window_start) >= WINDOW {
            entry.window_start = now;
            entry.in_window = 0;
        }
        entry.in_window = entry.in_window.saturating_add(1);
        if max_rate > 0 && entry.in_window > max_rate {
            return Err(Guard::ConnectionRate);
        }
        if max_per_ip > 0 && entry.open >= max_per_ip {
            return Err(Guard::PerIpConnections);
        }
        entry.open += 1;
        Ok(IpSlot {
            guard: Some(Box::new((self.clone(), ip))),
        })
    }

    fn release(&self, ip: IpAddr) {
        let mut state = self.state.lock();
        if let Some(entry) = state.get_mut(&ip) {
            entry.open = entry.open.saturating_sub(1);
        }
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        if let Some((guard, ip)) = self.guard.take().map(|b| *b) {
            guard.release(ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn open_connections_per_address_are_capped() {
        let g = IpGuard::new(2, 0);
        let now = Instant::now();
        let first = g.admit(A, now).expect("1");
        let _second = g.admit(A, now).expect("2");
        assert_eq!(g.admit(A, now).err(), Some(Guard::PerIpConnections));
        assert!(g.admit(B, now).is_ok(), "other addresses are not affected");
        drop(first);
        assert!(
            g.admit(A, now).is_ok(),
            "a closed connection frees its place"
        );
    }

    #[test]
    fn arrivals_per_second_are_capped() {
        let g = IpGuard::new(0, 2);
        let now = Instant::now();
        let _a = g.admit(A, now).expect("1");
        let _b = g.admit(A, now).expect("2");
        assert_eq!(g.admit(A, now).err(), Some(Guard::ConnectionRate));
        assert!(g.admit(A, now + WINDOW).is_ok(), "a new window");
    }

    #[test]
    fn off_by_default_and_changeable() {
        let g = IpGuard::new(0, 0);
        let now = Instant::now();
        let slots: Vec<_> = (0..100).map(|_| g.admit(A, now).expect("ok")).collect();
        assert!(g.state.lock().is_empty());
        drop(slots);
        g.set_limits(1, 0);
        let _one = g.admit(A, now).expect("one");
        assert!(g.admit(A, now).is_err());
    }
}

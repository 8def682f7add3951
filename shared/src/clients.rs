//! Counting what each client does: the key a client is counted under, and a bounded table of
//! counts that fade with time. The per-client limits of the local server and the join
//! challenge's per-address difficulty both count through it.

use std::collections::HashMap;
use std::net::IpAddr;

/// Who a request comes from, as far as counting goes: its address, with an IPv6 address cut to
/// its /64 (one subscriber's network: a host picks any address in it at will).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    pub fn of(address: IpAddr) -> Self {
        match address.to_canonical() {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                Self(IpAddr::V6(prefix.into()))
            }
            v4 => Self(v4),
        }
    }

    /// The key as bytes, for binding a challenge to the client it was issued to.
    pub fn bytes(&self) -> Vec<u8> {
        match self.0 {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        }
    }
}

/// Clients a table keeps at most: a bound against floods of addresses.
pub const MAX_CLIENTS: usize = 100_000;

/// Per client, a count that fades by `fade_per_sec` each second: what a client did lately.
/// Bounded: when full, the clients whose counts faded to nothing are forgotten first, then the
/// tenth with the smallest counts. Forgetting a client sets its count to zero, so the
/// clients forgotten are the ones that change least by it; a flood of fresh addresses (a count
/// of one each) cannot push out a client that has spent its limit, and nothing empties the
/// table at once.
#[derive(Debug)]
pub struct ClientCounts {
    fade_per_sec: f64,
    capacity: usize,
    /// Count and the time (ms, the caller's clock) it was last brought up to date.
    counts: HashMap<ClientKey, (f64, i64)>,
}

impl ClientCounts {
    pub fn new(fade_per_sec: f64) -> Self {
        Self::with_capacity(fade_per_sec, MAX_CLIENTS)
    }

    pub fn with_capacity(fade_per_sec: f64, capacity: usize) -> Self {
        Self {
            fade_per_sec,
            capacity: capacity.max(10),
            counts: HashMap::new(),
        }
    }

    fn faded(&self, (count, at): (f64, i64), now_ms: i64) -> f64 {
        let secs = (now_ms - at).max(0) as f64 / 1000.0;
        (count - secs * self.fade_per_sec).max(0.0)
    }

    /// `client`'s count now.
    pub fn get(&self, client: ClientKey, now_ms: i64) -> f64 {
        self.counts
            .get(&client)
            .map_or(0.0, |&entry| self.faded(entry, now_ms))
    }

    /// Adds one to `client`'s count unless that would pass `cap`; returns the count after, or
    /// `Err` with the count as it stays.
    pub fn add(&mut self, client: ClientKey, cap: f64, now_ms: i64) -> Result<f64, f64> {
        if !self.counts.contains_key(&client) && self.counts.len() >= self.capacity {
            self.make_room(now_ms);
        }
        let current = self.get(client, now_ms);
        if current + 1.0 > cap {
            self.counts.insert(client, (current, now_ms));
            return Err(current);
        }
        self.counts.insert(client, (current + 1.0, now_ms));
        Ok(current + 1.0)
    }

    fn make_room(&mut self, now_ms: i64) {
        let fade = self.fade_per_sec;
        self.counts.retain(|_, entry| {
            let secs = (now_ms - entry.1).max(0) as f64 / 1000.0;
            entry.0 - secs * fade > 0.0
        });
        let tenth = self.capacity / 10;
        if self.capacity - self.counts.len() >= tenth {
            return;
        }
        let mut counts: Vec<(ClientKey, f64)> = self
            .counts
            .iter()
            .map(|(&key, &entry)| (key, self.faded(entry, now_ms)))
            .collect();
        let cut = counts.len() - (self.capacity - tenth);
        counts.select_nth_unstable_by(cut, |a, b| a.1.total_cmp(&b.1));
        for (key, _) in &counts[..cut] {
            self.counts.remove(key);
        }
    }

    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> ClientKey {
        ClientKey::of(IpAddr::V4(n.into()))
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64_and_a_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ClientKey::of(a), ClientKey::of(b));
        assert_ne!(ClientKey::of(a), ClientKey::of(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(
            ClientKey::of(mapped),
            ClientKey::of("192.0.2.7".parse().unwrap())
        );
    }

    #[test]
    fn counts_fade_and_stop_at_their_cap() {
        let mut counts = ClientCounts::new(2.0);
        assert_eq!(counts.add(key(1), 2.0, 0), Ok(1.0));
        assert_eq!(counts.add(key(1), 2.0, 0), Ok(2.0));
        assert_eq!(counts.add(key(1), 2.0, 0), Err(2.0));
        assert_eq!(counts.add(key(1), 2.0, 500), Ok(2.0), "one faded in 0.5 s");
        assert_eq!(counts.get(key(1), 10_000), 0.0);
    }

    #[test]
    fn a_flood_of_fresh_addresses_never_frees_a_client_at_its_limit() {
        let mut counts = ClientCounts::with_capacity(0.001, 1_000);
        let limited = key(0);
        for _ in 0..20 {
            counts.add(limited, 20.0, 0).unwrap();
        }
        for n in 1..100_000 {
            let _ = counts.add(key(n), 20.0, 0);
            assert!(counts.len() <= 1_000);
        }
        assert_eq!(
            counts.add(limited, 20.0, 0),
            Err(20.0),
            "still at its limit"
        );
    }
}

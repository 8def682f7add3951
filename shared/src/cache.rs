//! A small in-process cache with a TTL and single-flight loads: while one caller refreshes a
//! key, concurrent callers wait for its answer instead of each reading the store. A warm
//! Lambda instance thus reads each hot item at most once per TTL, whatever its concurrency.
//!
//! Ages are read on the room's [`Clock`], so a run on a manual clock expires entries in its own
//! time, not in the machine's (the capacity model counts reads per simulated second).
//!
//! Reads take no lock: the key map and each key's value are snapshots swapped atomically
//! (`arc-swap`), so a warm read is a few atomic loads however many requests run at once. Only
//! a load (at most once per key and TTL) and a change to the key map take a lock.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::ports::Clock;

/// Keys kept before the cache is emptied: a bound against floods of distinct keys (adding a
/// key copies the map, so the bound also bounds that copy).
const MAX_KEYS: usize = 1_024;

struct Loaded<V> {
    /// When loaded, in the clock's milliseconds.
    at_ms: i64,
    value: Arc<V>,
}

struct Slot<V> {
    value: ArcSwapOption<Loaded<V>>,
    // Held across the load, so only one load per key runs at a time.
    loading: tokio::sync::Mutex<()>,
}

impl<V> Slot<V> {
    /// The value if loaded less than `ttl_ms` before `now_ms`. A clock set back makes the
    /// entry stale rather than fresh for longer.
    fn fresh(&self, now_ms: i64, ttl_ms: i64) -> Option<Arc<V>> {
        self.value
            .load()
            .as_ref()
            .filter(|loaded| (0..ttl_ms).contains(&(now_ms - loaded.at_ms)))
            .map(|loaded| loaded.value.clone())
    }
}

pub struct TtlCache<K, V> {
    ttl_ms: i64,
    clock: Arc<dyn Clock>,
    slots: ArcSwap<HashMap<K, Arc<Slot<V>>>>,
    // Serialises changes to the key map (a new key, a removal); never taken by a read.
    changing: Mutex<()>,
}

impl<K: Eq + Hash + Clone, V> TtlCache<K, V> {
    pub fn new(ttl: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            ttl_ms: i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX),
            clock,
            slots: ArcSwap::from_pointee(HashMap::new()),
            changing: Mutex::new(()),
        }
    }

    /// Changes the key map: a copy, changed by `change`, swapped in.
    fn change<R>(&self, change: impl FnOnce(&mut HashMap<K, Arc<Slot<V>>>) -> R) -> R {
        // std Mutex: no await under it; a panic elsewhere must not stop the cache.
        let _changing = match self.changing.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut next = HashMap::clone(&self.slots.load());
        let result = change(&mut next);
        self.slots.store(Arc::new(next));
        result
    }

    fn slot(&self, key: &K) -> Arc<Slot<V>> {
        if let Some(slot) = self.slots.load().get(key) {
            return slot.clone();
        }
        self.change(|slots| {
            if slots.len() >= MAX_KEYS && !slots.contains_key(key) {
                slots.clear();
            }
            slots
                .entry(key.clone())
                .or_insert_with(|| {
                    Arc::new(Slot {
                        value: ArcSwapOption::empty(),
                        loading: tokio::sync::Mutex::new(()),
                    })
                })
                .clone()
        })
    }

    /// The cached value if fresh, else the result of `load` (run by one caller at a time).
    /// Errors are not cached.
    pub async fn get_or_load<E, F, Fut>(&self, key: &K, load: F) -> Result<Arc<V>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        // The hot path: no lock, no copy of the map.
        let now_ms = self.clock.now_ms();
        if let Some(value) = self
            .slots
            .load()
            .get(key)
            .and_then(|s| s.fresh(now_ms, self.ttl_ms))
        {
            crate::metrics::add("cache_hits_total", 1);
            return Ok(value);
        }
        let slot = self.slot(key);
        let _loading = slot.loading.lock().await;
        // Whoever held the lock before us may have just loaded it.
        if let Some(value) = slot.fresh(self.clock.now_ms(), self.ttl_ms) {
            crate::metrics::add("cache_hits_total", 1);
            return Ok(value);
        }
        crate::metrics::add("cache_misses_total", 1);
        let value = Arc::new(load().await?);
        slot.value.store(Some(Arc::new(Loaded {
            at_ms: self.clock.now_ms(),
            value: value.clone(),
        })));
        Ok(value)
    }

    /// Keeps `value` for `key` as if just loaded (a value the caller read for its own reasons).
    pub fn insert(&self, key: &K, value: V) {
        self.slot(key).value.store(Some(Arc::new(Loaded {
            at_ms: self.clock.now_ms(),
            value: Arc::new(value),
        })));
    }

    /// Forgets a key, so a change made by this process is seen at once (a load already under
    /// way fills the forgotten slot, not the next one).
    pub fn invalidate(&self, key: &K) {
        if self.slots.load().contains_key(key) {
            self.change(|slots| slots.remove(key));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::{ManualClock, SystemClock};
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_collapse_into_one_load() {
        let cache = Arc::new(TtlCache::<u8, u64>::new(
            Duration::from_secs(60),
            Arc::new(SystemClock),
        ));
        let loads = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let (cache, loads) = (cache.clone(), loads.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_load(&1, || async {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok::<_, ()>(7)
                    })
                    .await
                    .map(|v| *v)
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), Ok(7));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn stale_or_invalidated_entries_are_reloaded_and_errors_are_not_kept() {
        let cache = TtlCache::<u8, u64>::new(Duration::from_secs(60), Arc::new(SystemClock));
        assert_eq!(
            cache
                .get_or_load(&1, || async { Err::<u64, _>("down") })
                .await
                .map(|v| *v),
            Err("down")
        );
        assert_eq!(
            cache
                .get_or_load(&1, || async { Ok::<_, ()>(1) })
                .await
                .map(|v| *v),
            Ok(1)
        );
        assert_eq!(
            cache
                .get_or_load(&1, || async { Ok::<_, ()>(2) })
                .await
                .map(|v| *v),
            Ok(1)
        );
        cache.invalidate(&1);
        assert_eq!(
            cache
                .get_or_load(&1, || async { Ok::<_, ()>(3) })
                .await
                .map(|v| *v),
            Ok(3)
        );
        cache.insert(&1, 4);
        assert_eq!(
            cache
                .get_or_load(&1, || async { Ok::<_, ()>(5) })
                .await
                .map(|v| *v),
            Ok(4)
        );

        let expiring = TtlCache::<u8, u64>::new(Duration::ZERO, Arc::new(SystemClock));
        assert_eq!(
            expiring
                .get_or_load(&1, || async { Ok::<_, ()>(1) })
                .await
                .map(|v| *v),
            Ok(1)
        );
        assert_eq!(
            expiring
                .get_or_load(&1, || async { Ok::<_, ()>(2) })
                .await
                .map(|v| *v),
            Ok(2)
        );
    }

    #[tokio::test]
    async fn entries_age_on_the_rooms_clock() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let cache = TtlCache::<u8, u64>::new(Duration::from_secs(5), clock.clone());
        let load = |v: u64| move || async move { Ok::<_, ()>(v) };
        assert_eq!(cache.get_or_load(&1, load(1)).await.map(|v| *v), Ok(1));
        clock.advance_ms(4_999);
        assert_eq!(cache.get_or_load(&1, load(2)).await.map(|v| *v), Ok(1));
        clock.advance_ms(1);
        assert_eq!(cache.get_or_load(&1, load(3)).await.map(|v| *v), Ok(3));
        // A clock set back does not keep an entry fresh for longer.
        clock.advance_ms(-1);
        assert_eq!(cache.get_or_load(&1, load(4)).await.map(|v| *v), Ok(4));
    }
}

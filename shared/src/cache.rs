//! A small in-process cache with a TTL and single-flight loads: while one caller refreshes a
//! key, concurrent callers wait for its answer instead of each reading the store. A warm
//! Lambda instance thus reads each hot item at most once per TTL, whatever its concurrency.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Entries kept before the cache is emptied: a bound against floods of distinct keys.
const MAX_KEYS: usize = 10_000;

struct Slot<V> {
    // std Mutex: held only to copy the value in or out.
    value: Mutex<Option<(Instant, V)>>,
    // Held across the load, so only one load per key runs at a time.
    loading: tokio::sync::Mutex<()>,
}

impl<V: Clone> Slot<V> {
    fn fresh(&self, ttl: Duration) -> Option<V> {
        let value = self.value.lock().ok()?;
        value
            .as_ref()
            .filter(|(at, _)| at.elapsed() < ttl)
            .map(|(_, v)| v.clone())
    }
}

pub struct TtlCache<K, V> {
    ttl: Duration,
    slots: Mutex<HashMap<K, Arc<Slot<V>>>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, key: &K) -> Arc<Slot<V>> {
        let mut slots = match self.slots.lock() {
            Ok(slots) => slots,
            Err(poisoned) => poisoned.into_inner(),
        };
        if slots.len() >= MAX_KEYS && !slots.contains_key(key) {
            slots.clear();
        }
        slots
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Slot {
                    value: Mutex::new(None),
                    loading: tokio::sync::Mutex::new(()),
                })
            })
            .clone()
    }

    /// The cached value if fresh, else the result of `load` (run by one caller at a time).
    /// Errors are not cached.
    pub async fn get_or_load<E, F, Fut>(&self, key: &K, load: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let slot = self.slot(key);
        if let Some(value) = slot.fresh(self.ttl) {
            crate::metrics::add("cache_hits_total", 1);
            return Ok(value);
        }
        let _loading = slot.loading.lock().await;
        // Whoever held the lock before us may have just loaded it.
        if let Some(value) = slot.fresh(self.ttl) {
            crate::metrics::add("cache_hits_total", 1);
            return Ok(value);
        }
        crate::metrics::add("cache_misses_total", 1);
        let value = load().await?;
        if let Ok(mut stored) = slot.value.lock() {
            *stored = Some((Instant::now(), value.clone()));
        }
        Ok(value)
    }

    /// Forgets a key, so a change made by this process is seen at once.
    pub fn invalidate(&self, key: &K) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_collapse_into_one_load() {
        let cache = Arc::new(TtlCache::<u8, u64>::new(Duration::from_secs(60)));
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
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), Ok(7));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn stale_or_invalidated_entries_are_reloaded_and_errors_are_not_kept() {
        let cache = TtlCache::<u8, u64>::new(Duration::from_secs(60));
        assert_eq!(
            cache
                .get_or_load(&1, || async { Err::<u64, _>("down") })
                .await,
            Err("down")
        );
        assert_eq!(
            cache.get_or_load(&1, || async { Ok::<_, ()>(1) }).await,
            Ok(1)
        );
        assert_eq!(
            cache.get_or_load(&1, || async { Ok::<_, ()>(2) }).await,
            Ok(1)
        );
        cache.invalidate(&1);
        assert_eq!(
            cache.get_or_load(&1, || async { Ok::<_, ()>(3) }).await,
            Ok(3)
        );

        let expiring = TtlCache::<u8, u64>::new(Duration::ZERO);
        assert_eq!(
            expiring.get_or_load(&1, || async { Ok::<_, ()>(1) }).await,
            Ok(1)
        );
        assert_eq!(
            expiring.get_or_load(&1, || async { Ok::<_, ()>(2) }).await,
            Ok(2)
        );
    }
}

//! The one way the adapter tries a step again: an optimistic step (a conditional write that
//! lost a race, a transaction cancelled by a concurrent one) or a throttled one pauses and
//! goes again, a few times, then gives up with `Throttled` (503 with `Retry-After`).

use std::future::Future;
use std::time::Duration;

use crate::ports::StoreError;

/// Tries of a step before giving up.
const ATTEMPTS: u32 = 8;

/// What one try of a step came to.
pub(super) enum Try<T> {
    Done(T),
    /// Lost a race or was refused for now: worth another try after a pause.
    Again,
}

/// Runs `step` until it is done. A step that answers [`Try::Again`] or fails with
/// `Throttled` goes again after a pause; any other error ends it.
pub(super) async fn retry<T, F, Fut>(mut step: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Try<T>, StoreError>>,
{
    for attempt in 0..ATTEMPTS {
        match step().await {
            Ok(Try::Done(value)) => return Ok(value),
            Ok(Try::Again) | Err(StoreError::Throttled) => pause(attempt).await,
            Err(error) => return Err(error),
        }
    }
    Err(StoreError::Throttled)
}

/// Backs off before another try: 10 ms doubling, with jitter so racers spread out.
async fn pause(attempt: u32) {
    let base = 10u64 << attempt.min(6);
    let jitter = (uuid::Uuid::new_v4().as_u128() % u128::from(base)) as u64;
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_step_goes_again_until_done_and_gives_up_in_the_end() {
        let tries = AtomicU32::new(0);
        let done = retry(|| async {
            let n = tries.fetch_add(1, Ordering::SeqCst);
            match n {
                0 => Ok(Try::Again),
                1 => Err(StoreError::Throttled),
                _ => Ok(Try::Done(n)),
            }
        })
        .await;
        assert_eq!(done.unwrap(), 2);

        let never = retry(|| async { Ok::<Try<()>, _>(Try::Again) }).await;
        assert!(matches!(never, Err(StoreError::Throttled)));

        let tries = AtomicU32::new(0);
        let broken = retry(|| async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err::<Try<()>, _>(StoreError::Corrupt("x".into()))
        })
        .await;
        assert!(matches!(broken, Err(StoreError::Corrupt(_))));
        assert_eq!(
            tries.load(Ordering::SeqCst),
            1,
            "other errors end it at once"
        );
    }
}

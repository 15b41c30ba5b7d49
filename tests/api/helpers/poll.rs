//! [`eventually`]: the one way a test waits for something that happens in the background (a flush, a
//! cache expiring, another node catching up, a key rotating).

use std::future::Future;
use std::time::{Duration, Instant};

/// The first wait between two looks; each next one doubles, up to [`SLOWEST`].
const FIRST: Duration = Duration::from_millis(10);
/// The longest wait between two looks.
const SLOWEST: Duration = Duration::from_millis(50);

/// What a look of [`eventually`] may answer: `true`, `Some(value)` or `Ok(value)` when it holds;
/// `false`, `None`, or `Err(why)` (shown when time runs out) when not yet.
pub trait Settled {
    type Value;
    fn settled(self) -> Result<Self::Value, Option<String>>;
}

impl Settled for bool {
    type Value = ();
    fn settled(self) -> Result<(), Option<String>> {
        if self { Ok(()) } else { Err(None) }
    }
}

impl<T> Settled for Option<T> {
    type Value = T;
    fn settled(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

impl<T> Settled for Result<T, String> {
    type Value = T;
    fn settled(self) -> Result<T, Option<String>> {
        self.map_err(Some)
    }
}

/// Looks with `check` until it holds and returns what it found; fails the test with `what` (and
/// the last `Err` of `check`) when it still does not hold after `limit`. A look may assert what
/// must stay true while waiting. Looks come 10 ms apart at first, then up to 50 ms apart.
pub async fn eventually<F, Fut>(
    limit: Duration,
    what: &str,
    mut check: F,
) -> <Fut::Output as Settled>::Value
where
    F: FnMut() -> Fut,
    Fut: Future,
    Fut::Output: Settled,
{
    let start = Instant::now();
    let mut pause = FIRST;
    loop {
        let last = match check().await.settled() {
            Ok(value) => return value,
            Err(why) => why,
        };
        if start.elapsed() >= limit {
            match last {
                Some(why) => panic!("timed out after {limit:?} waiting for: {what} (last: {why})"),
                None => panic!("timed out after {limit:?} waiting for: {what}"),
            }
        }
        actix_web::rt::time::sleep(pause).await;
        pause = (pause * 2).min(SLOWEST);
    }
}

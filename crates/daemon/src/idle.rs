//! Giving memory back while berthd idles: start-up and bursts of requests touch much of the
//! 20 MB binary and grow the heap; once no request has run for [`QUIET`], berthd trims its heap
//! and drops clean code pages from its page tables ([`berth_runtime::mem::shed`]: they stay in
//! the page cache and fault back in on the next request). Once per quiet spell.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long no request must have run before shedding.
const QUIET: Duration = Duration::from_secs(2);

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
/// Milliseconds since [`epoch`] when the last request ended.
static LAST_MS: AtomicU64 = AtomicU64::new(0);
/// Whether the current quiet spell has been used to shed.
static SHED: AtomicBool = AtomicBool::new(false);

fn epoch() -> Instant {
    static E: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *E.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

/// Held while a request runs.
pub struct Busy(());

/// Marks a request as running until the returned guard drops.
pub fn busy() -> Busy {
    IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
    SHED.store(false, Ordering::SeqCst);
    Busy(())
}

impl Drop for Busy {
    fn drop(&mut self) {
        LAST_MS.store(now_ms(), Ordering::SeqCst);
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs for the daemon's life: sheds once per quiet spell (the first one right after start-up).
pub async fn shed_when_quiet() {
    let _ = epoch();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let quiet = IN_FLIGHT.load(Ordering::SeqCst) == 0
            && now_ms().saturating_sub(LAST_MS.load(Ordering::SeqCst)) >= QUIET.as_millis() as u64;
        if quiet && !SHED.swap(true, Ordering::SeqCst) {
            let _ = tokio::task::spawn_blocking(berth_runtime::mem::shed).await;
        }
    }
}

//! How many applications may be in each stage at once (`concurrency` in the
//! configuration): fetches, renders, and plans with their applies. Each
//! application is followed on its own task; these bounds keep a fleet of a
//! thousand from fetching, rendering or calling the API server all at once
//! when they wake together (at start, or on a push to a monorepo).

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::config::Concurrency;

/// Threads for blocking work beside the bounded fetches and renders:
/// reading release files, opening trees, loading the configuration.
const SPARE_BLOCKING_THREADS: usize = 4;

/// How many threads tokio's blocking pool may start. Fetches (which may
/// hang on a repository) and renders hold a thread each within their own
/// bounds; the rest is short file work. Without a bound, a fleet waking at
/// once started a thread per application reading its release file (54 at
/// 200 releases), and each thread's allocator pages stayed resident after
/// it ended.
pub fn blocking_threads(concurrency: &Concurrency) -> usize {
    concurrency.fetches + concurrency.renders + SPARE_BLOCKING_THREADS
}

/// One semaphore per bounded stage.
pub struct Limits {
    fetches: Semaphore,
    renders: Semaphore,
    applies: Semaphore,
}

/// A place in a stage, given back when dropped. `None` only if the
/// semaphore were closed, which berth never does.
pub type Permit<'a> = Option<SemaphorePermit<'a>>;

impl Limits {
    pub fn new(concurrency: &Concurrency) -> Limits {
        Limits {
            fetches: Semaphore::new(concurrency.fetches),
            renders: Semaphore::new(concurrency.renders),
            applies: Semaphore::new(concurrency.applies),
        }
    }

    /// Waits for a place among the fetches.
    pub async fn fetch(&self) -> Permit<'_> {
        self.fetches.acquire().await.ok()
    }

    /// Waits for a place among the renders.
    pub async fn render(&self) -> Permit<'_> {
        self.renders.acquire().await.ok()
    }

    /// Waits for a place among the plans and applies.
    pub async fn apply(&self) -> Permit<'_> {
        self.applies.acquire().await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stage_holds_no_more_than_its_limit() {
        let limits = Limits::new(&Concurrency {
            fetches: 2,
            renders: 1,
            applies: 1,
            requests: 4,
        });
        let first = limits.fetch().await;
        let second = limits.fetch().await;
        assert!(first.is_some() && second.is_some());
        let third = tokio::time::timeout(std::time::Duration::from_millis(50), limits.fetch());
        assert!(third.await.is_err(), "a third fetch got a place");
        drop(first);
        assert!(limits.fetch().await.is_some());
        // The stages are independent.
        let _render = limits.render().await;
        assert!(limits.apply().await.is_some());
    }
}

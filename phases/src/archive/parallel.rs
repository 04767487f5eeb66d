//! A bounded work queue: runs a function over independent items on up to N scoped threads, results in
//! input order. [`build_parallel`](super::build_parallel) and the exporter's per-layer work both use it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Runs `f` on every item on up to `threads` OS threads (0 = all cores; never more threads than items) and
/// returns the results in input order. A result is `None` only when the worker computing it panicked.
/// With one thread (or one item) everything runs on the calling thread.
pub fn parallel_map<T, R, F>(items: Vec<T>, threads: usize, f: F) -> Vec<Option<R>>
where
    T: Send,
    R: Send,
    F: Fn(T) -> R + Sync,
{
    let n = items.len();
    let threads = if threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        threads
    }
    .min(n.max(1));
    if threads <= 1 {
        return items.into_iter().map(|i| Some(f(i))).collect();
    }
    let queue: Vec<Mutex<Option<T>>> = items.into_iter().map(|j| Mutex::new(Some(j))).collect();
    let results: Vec<Mutex<Option<R>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let job = queue[i].lock().ok().and_then(|mut j| j.take());
                if let Some(job) = job {
                    let r = f(job);
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    results
        .into_iter()
        .map(|m| m.into_inner().ok().flatten())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_input_order_on_any_thread_count() {
        for threads in [0, 1, 3, 64] {
            let out = parallel_map((0..20).collect(), threads, |i: u32| i * 2);
            let want: Vec<Option<u32>> = (0..20).map(|i| Some(i * 2)).collect();
            assert_eq!(out, want);
        }
        assert!(parallel_map(Vec::<u8>::new(), 4, |i| i).is_empty());
    }
}

//! Work spread over the machine's cores, for the walker once it has given up every
//! privilege.
//!
//! Threads are started only by the walker, which never forks, and only after it gave up its
//! capabilities: a new thread copies the credentials of the thread that starts it, so no
//! thread of the walker holds any privilege while it parses what a target sent. The walk's
//! first part, joining each namespace and opening a socket there, stays on one thread: on
//! two it was slower here (setns and socket creation contend in the kernel).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// At most this many threads work at once: reading a namespace is mostly the kernel's work
/// in that namespace, and beyond a few cores other locks in the kernel take over.
const MOST_WORKERS: usize = 4;

/// How many threads [`map_in_parallel`] uses here: one per core this process may run on, up
/// to [`MOST_WORKERS`]. Asked once, with one system call: std's `available_parallelism`
/// also reads cgroup files, which cost a query of one container 0.1-0.2 ms.
pub fn workers() -> usize {
    static WORKERS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *WORKERS.get_or_init(|| {
        let cores = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).map_or(1, |set| {
            (0..nix::sched::CpuSet::count())
                .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
                .count()
        });
        cores.clamp(1, MOST_WORKERS)
    })
}

/// `work` applied to every item, the results in the items' order. Items are handed out one
/// at a time, so a large item (a namespace of thousands of links) does not hold back the
/// rest. With one core, or fewer than two items, no thread is started.
pub fn map_in_parallel<T, R, F>(items: Vec<T>, workers: usize, work: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(T) -> R + Sync,
{
    if workers <= 1 || items.len() < 2 {
        return items.into_iter().map(work).collect();
    }
    let count = items.len();
    let slots: Vec<Mutex<Option<T>>> = items.into_iter().map(|i| Mutex::new(Some(i))).collect();
    let next = AtomicUsize::new(0);
    let run = || {
        let mut done: Vec<(usize, R)> = Vec::new();
        loop {
            let at = next.fetch_add(1, Ordering::Relaxed);
            let Some(slot) = slots.get(at) else {
                return done;
            };
            // Each slot is taken exactly once, by whoever drew its number: never contended,
            // and never poisoned, since no lock is held while `work` runs.
            let item = slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
                .expect("each item is drawn once");
            done.push((at, work(item)));
        }
    };
    let mut results: Vec<Option<R>> = std::iter::repeat_with(|| None).take(count).collect();
    std::thread::scope(|scope| {
        // A thread the system refuses (a cgroup's pids.max, say) only leaves more items to
        // the threads there are: this one draws until none is left.
        let helpers: Vec<_> = (1..workers.min(count))
            .filter_map(|_| std::thread::Builder::new().spawn_scoped(scope, run).ok())
            .collect();
        let mut place = |done: Vec<(usize, R)>| {
            for (at, result) in done {
                results[at] = Some(result);
            }
        };
        place(run());
        for helper in helpers {
            match helper.join() {
                Ok(done) => place(done),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    results
        .into_iter()
        .map(|result| result.expect("every item is worked on"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_order_of_the_items_whatever_thread_made_them() {
        let items: Vec<u64> = (0..1000).collect();
        for workers in [1, 2, 3, 8] {
            let squares = map_in_parallel(items.clone(), workers, |n| {
                // Uneven work, so threads finish out of order.
                if n % 7 == 0 {
                    std::thread::sleep(std::time::Duration::from_micros(50));
                }
                n * n
            });
            assert_eq!(squares, items.iter().map(|n| n * n).collect::<Vec<_>>());
        }
    }

    #[test]
    fn every_item_is_worked_on_once_and_on_more_than_one_thread() {
        let seen = Mutex::new(Vec::new());
        let threads = Mutex::new(std::collections::HashSet::new());
        let out = map_in_parallel((0..200).collect(), 2, |n: u32| {
            seen.lock().unwrap().push(n);
            threads.lock().unwrap().insert(std::thread::current().id());
            std::thread::sleep(std::time::Duration::from_micros(200));
            n
        });
        let mut seen = seen.into_inner().unwrap();
        seen.sort_unstable();
        assert_eq!(seen, (0..200).collect::<Vec<_>>());
        assert_eq!(out.len(), 200);
        assert_eq!(threads.into_inner().unwrap().len(), 2);
    }

    #[test]
    fn one_worker_or_one_item_starts_no_thread() {
        let me = std::thread::current().id();
        let on = map_in_parallel(vec![1], 4, |_| std::thread::current().id());
        assert_eq!(on, vec![me]);
        let on = map_in_parallel(vec![1, 2, 3], 1, |_| std::thread::current().id());
        assert!(on.iter().all(|id| *id == me));
    }
}

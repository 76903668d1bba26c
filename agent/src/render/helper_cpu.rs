//! Starting the render's helper thread on another CPU than the thread that
//! spawns it.
//!
//! Linux often queues a new thread on its creator's CPU, even with another
//! CPU idle: the helper then waits for the creator's time slice or for the
//! next load-balancing tick (up to 4 ms here), or it preempts the creator
//! and the two share one CPU. Either way the parallel part of a render is
//! lost (docs/benchmarks.md). Restricting the new thread to the other CPUs
//! until it first runs makes the kernel place it there at once; it then gets
//! its full CPU set back, so the scheduler stays free to move it later.

#[cfg(target_os = "linux")]
mod imp {
    use std::os::unix::thread::JoinHandleExt;

    /// The spawning thread's CPU and the CPUs the process may use.
    #[derive(Clone)]
    pub struct SpawnerCpu {
        allowed: libc::cpu_set_t,
        others: libc::cpu_set_t,
        spawner: usize,
    }

    impl SpawnerCpu {
        /// `None` when there is no other CPU to go to, or the kernel does not say.
        pub fn current() -> Option<SpawnerCpu> {
            // SAFETY: cpu_set_t is a plain bit array, valid when zeroed; the
            // calls write into it within the size given.
            unsafe {
                let mut allowed: libc::cpu_set_t = std::mem::zeroed();
                if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut allowed) != 0 {
                    return None;
                }
                let spawner = usize::try_from(libc::sched_getcpu()).ok()?;
                let mut others = allowed;
                libc::CPU_CLR(spawner, &mut others);
                (libc::CPU_COUNT(&others) > 0).then_some(SpawnerCpu {
                    allowed,
                    others,
                    spawner,
                })
            }
        }

        /// Called by the spawner right after the spawn: a helper that has not
        /// run yet is queued on another CPU.
        pub fn move_off<T>(&self, helper: &std::thread::JoinHandle<T>) {
            // SAFETY: the handle's thread is not joined yet, so its pthread_t
            // is valid; the set is read within its size.
            // pthread_t is an integer in glibc and a pointer in musl.
            #[allow(clippy::unnecessary_cast)]
            let thread = helper.as_pthread_t() as libc::pthread_t;
            unsafe {
                libc::pthread_setaffinity_np(thread, size_of::<libc::cpu_set_t>(), &self.others);
            }
        }

        /// Called first on the helper: if it started on the spawner's CPU
        /// (before [`Self::move_off`]), it moves off; then it takes back the
        /// whole set. Failures only cost speed, so they are ignored.
        pub fn settle_helper(&self) {
            // SAFETY: as in `current`; pid 0 is the calling thread.
            unsafe {
                if usize::try_from(libc::sched_getcpu()).ok() == Some(self.spawner) {
                    libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &self.others);
                }
                libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &self.allowed);
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn cpu_count(set: &libc::cpu_set_t) -> i32 {
            // SAFETY: only reads the set.
            unsafe { libc::CPU_COUNT(set) }
        }

        /// One trial in this process: spawns a helper while this thread
        /// stays busy, as a render's main thread does, and returns the
        /// helper's CPU, its CPU count after settling, and the spawner's CPU.
        fn placement_trial() -> (Option<usize>, i32, usize) {
            let spawner = SpawnerCpu::current().expect("placement");
            let started = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let helper = std::thread::spawn({
                let spawner = spawner.clone();
                let started = started.clone();
                move || {
                    spawner.settle_helper();
                    started.store(true, std::sync::atomic::Ordering::Release);
                    // SAFETY: zeroed cpu_set_t is valid; the call writes within its size.
                    let cpu = unsafe { libc::sched_getcpu() };
                    let mut now: libc::cpu_set_t = unsafe { std::mem::zeroed() };
                    unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut now) };
                    (usize::try_from(cpu).ok(), cpu_count(&now))
                }
            });
            spawner.move_off(&helper);
            let spin_until = std::time::Instant::now() + std::time::Duration::from_secs(2);
            while !started.load(std::sync::atomic::Ordering::Acquire)
                && std::time::Instant::now() < spin_until
            {
                std::hint::spin_loop();
            }
            let (cpu, count) = helper.join().expect("helper thread");
            (cpu, count, spawner.spawner)
        }

        /// Run by the test below in a fresh process (the first thread a
        /// process spawns is the one the kernel tends to queue at home).
        #[test]
        #[ignore = "run in a child process by helpers_start_on_another_cpu"]
        fn placement_trial_in_a_fresh_process() {
            let (cpu, count, spawner) = placement_trial();
            println!("PLACEMENT {cpu:?} {count} {spawner}");
        }

        #[test]
        fn helpers_start_on_another_cpu_and_get_their_whole_set_back() {
            // SAFETY: zeroed cpu_set_t is valid; the call writes within its size.
            let mut allowed: libc::cpu_set_t = unsafe { std::mem::zeroed() };
            assert_eq!(
                unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut allowed) },
                0
            );
            if SpawnerCpu::current().is_none() {
                assert_eq!(cpu_count(&allowed), 1, "several CPUs, but no placement");
                return;
            }
            let test_binary = std::env::current_exe().expect("test binary");
            for trial in 0..20 {
                let out = std::process::Command::new(&test_binary)
                    .args([
                        "--exact",
                        "render::helper_cpu::imp::tests::placement_trial_in_a_fresh_process",
                        "--ignored",
                        "--nocapture",
                        "--test-threads=1",
                    ])
                    .output()
                    .expect("run the trial");
                let stdout = String::from_utf8_lossy(&out.stdout);
                let line = stdout
                    .lines()
                    .find_map(|l| l.split_once("PLACEMENT ").map(|(_, result)| result))
                    .unwrap_or_else(|| panic!("trial {trial}: no result in {stdout}"));
                let fields: Vec<&str> = line.split(' ').collect();
                let [cpu, count, spawner] = fields[..] else {
                    panic!("trial {trial}: {line}");
                };
                assert_ne!(
                    cpu,
                    format!("Some({spawner})"),
                    "trial {trial}: the helper ran on its spawner's CPU"
                );
                assert_eq!(count, cpu_count(&allowed).to_string(), "trial {trial}");
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    /// Elsewhere the helper starts wherever the scheduler puts it.
    #[derive(Clone)]
    pub struct SpawnerCpu;

    impl SpawnerCpu {
        pub fn current() -> Option<SpawnerCpu> {
            None
        }
        pub fn move_off<T>(&self, _helper: &std::thread::JoinHandle<T>) {}
        pub fn settle_helper(&self) {}
    }
}

pub use imp::SpawnerCpu;

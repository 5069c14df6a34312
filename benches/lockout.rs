//! What sharing the lockout in Redis adds to a login: a wrong PIN costs one `attempt` per
//! counter, counted before the directory is asked; a right PIN one `attempt` and one `reset`. Measured one at a time (the latency a caller waits) and 64 at
//! once (what a node sustains), in memory and against a real redis-server on loopback.
//! Run: `bash bench/lockout.sh` (starts redis-server; prints figures, no pass or fail).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ivr::directory::lockout::{FailureCounter, InMemoryCounter, Policy};
use ivr::directory::shared_lockout::RedisCounter;

const LOGINS: usize = 20_000;
const CONCURRENT: usize = 64;

fn policy() -> Policy {
    Policy {
        max_failures: 1_000_000,
        window: Duration::from_secs(60),
        lock_for: Duration::from_secs(60),
    }
}

/// One wrong-PIN login's counter work: checked and counted in one step.
async fn wrong_pin(counter: &dyn FailureCounter, account: &str) {
    counter.attempt(account).await;
}

async fn measure(name: &str, counter: Arc<dyn FailureCounter>) {
    let start = Instant::now();
    for i in 0..LOGINS {
        wrong_pin(counter.as_ref(), &format!("{}", 10_000_000 + i)).await;
    }
    let serial = start.elapsed();
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENT)
        .map(|t| {
            let counter = counter.clone();
            tokio::spawn(async move {
                for i in (t..LOGINS).step_by(CONCURRENT) {
                    wrong_pin(counter.as_ref(), &format!("{}", 20_000_000 + i)).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let parallel = start.elapsed();
    println!(
        "{name:>9}: {:>7.1} µs per wrong-PIN login one at a time; {:>8.0} logins/s with {CONCURRENT} at once",
        serial.as_secs_f64() * 1e6 / LOGINS as f64,
        LOGINS as f64 / parallel.as_secs_f64()
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        measure("in memory", Arc::new(InMemoryCounter::new(policy()))).await;
        match std::env::var("IVR_BENCH_REDIS") {
            Ok(url) => {
                let redis = RedisCounter::new("account", &url, b"bench key, sixteen+", policy())
                    .expect("redis url");
                measure("redis", Arc::new(redis)).await;
            }
            Err(_) => {
                println!("    redis: skipped (IVR_BENCH_REDIS unset; bench/lockout.sh sets it)")
            }
        }
    });
}

//! The hashing limit of this machine: one Synapse-compatible bcrypt hash (NFKC(password) ++
//! pepper, the first 72 bytes, `$2b$`), timed in a plain loop on one thread, through the same
//! code `homekey` hashes with. Prints one JSON line: the cost, the number of hashes and the
//! median and mean time of one, in milliseconds.
//!
//!     cargo run --release --example bench-bcrypt -- [COST] [HASHES]    # default 12 and 10
//!     cargo run --release --example bench-bcrypt -- 12 once    # one hash, no output: the
//!                                                              # floor of a whole process
//!     cargo run --release --example bench-bcrypt -- 12 cold    # one hash timed with no
//!                                                              # warm-up, as a server's after idle

use std::time::Instant;

use homekey::config::HashScheme;
use homekey::password::HashSettings;
use secrecy::SecretString;

fn main() {
    let mut args = std::env::args().skip(1);
    let cost: u32 = args
        .next()
        .map_or(12, |a| a.parse().expect("COST: a number"));
    let hashes = args.next();
    let settings = HashSettings::new(HashScheme::Bcrypt, cost, SecretString::from("bench-pepper"));
    let password = SecretString::from("correct horse battery staple");
    if hashes.as_deref() == Some("once") {
        std::hint::black_box(settings.hash(&password).expect("hashing works"));
        return;
    }
    // The first hash of a while runs 3-5 % slower (cold caches): a server's hash after idle
    // is such a hash, the loop's are not.
    let cold = hashes.as_deref() == Some("cold");
    let hashes: usize = if cold {
        1
    } else {
        hashes.map_or(10, |a| a.parse().expect("HASHES: a number, once or cold"))
    };
    if !cold {
        // One hash first: page faults and frequency ramp-up are not the hash.
        settings.hash(&password).expect("hashing works");
    }
    let mut times: Vec<f64> = (0..hashes)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(settings.hash(&password).expect("hashing works"));
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!(
        "{{\"cost\": {cost}, \"hashes\": {hashes}, \"median_ms\": {median:.2}, \"mean_ms\": {mean:.2}, \"min_ms\": {:.2}}}",
        times[0]
    );
}

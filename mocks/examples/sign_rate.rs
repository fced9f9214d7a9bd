//! RSA-2048 PKCS#1 v1.5 signatures per second with aws-lc-rs, the signer
//! the mock UAA uses, on N threads (default 1) for five seconds: the
//! figure to hold against `openssl speed [-multi N] rsa2048`, the ceiling
//! `bench/compare.sh` measures token rates against. A fresh key each run
//! (TEST ONLY, never written anywhere).
//!
//! `cargo run --release -p idprop-mocks --example sign_rate -- 2`

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let threads: usize = match std::env::args().nth(1).map(|s| s.parse()) {
        None => 1,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: sign_rate [THREADS > 0]");
            std::process::exit(2);
        }
    };
    let key = Arc::new(RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA-2048 key generation"));
    let window = Duration::from_secs(5);
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let key = key.clone();
            std::thread::spawn(move || {
                let mut sig = vec![0u8; key.public_modulus_len()];
                let mut signed = 0u64;
                while start.elapsed() < window {
                    key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), b"header.claims", &mut sig).expect("signing");
                    signed += 1;
                }
                signed
            })
        })
        .collect();
    let total: u64 = workers.into_iter().map(|w| w.join().expect("signer thread")).sum();
    println!("{threads} thread(s): {:.0} signs/s", total as f64 / start.elapsed().as_secs_f64());
}

//! The CIFAR-10 batch reader: `ladder::data::parse_cifar` on arbitrary bytes, and
//! `load_cifar_dir` on a directory whose six batch files all hold those bytes.
//!
//! Besides "never panics" it checks what is accepted: a whole number of 3,073-byte records,
//! every label below 10, every pixel in [0, 1], `[3, 32, 32]` images; and that the allocation
//! is bounded by the input (the pixels of an accepted file are 3,072 floats per record).
#![no_main]

#[path = "common.rs"]
mod common;

use ladder::data::cifar::{CIFAR_RECORD, CIFAR_TEST_FILE, CIFAR_TRAIN_FILES};
use ladder::data::{load_cifar_dir, parse_cifar};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = parse_cifar(data, "fuzz.bin");
    common::report("parse_cifar", &parsed);
    if let Ok(d) = &parsed {
        assert_eq!(data.len() % CIFAR_RECORD, 0);
        assert_eq!(d.n, data.len() / CIFAR_RECORD);
        assert_eq!(d.images.len(), d.n * 3072);
        assert_eq!(d.image_shape, vec![3, 32, 32]);
        assert!(d.labels.iter().all(|&l| l < 10));
        assert!(d.images.iter().all(|&v| (0.0..=1.0).contains(&v)));
    }
    // The directory loader on small inputs only: it reads six copies.
    if data.len() <= 4 * CIFAR_RECORD {
        let dir = common::tempdir();
        for f in CIFAR_TRAIN_FILES.iter().chain([&CIFAR_TEST_FILE]) {
            std::fs::write(dir.path().join(f), data).expect("write");
        }
        let pair = load_cifar_dir(dir.path(), 10);
        common::report("load_cifar_dir", &pair);
        assert_eq!(pair.is_ok(), parsed.is_ok());
        if let Ok(p) = &pair {
            assert_eq!((p.train.n, p.test.n), (5 * p.test.n, p.test.n));
        }
    }
});

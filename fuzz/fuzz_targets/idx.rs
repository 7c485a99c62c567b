//! IDX reader: `ladder::data::parse_idx` on the raw bytes and, for input that starts with the
//! gzip magic `1f 8b`, `ladder::data::read_idx_file` on the bytes written to a temp `x.gz`.
//!
//! Besides "never panics" (run with `-rss_limit_mb=512 -malloc_limit_mb=256` so that an
//! allocation sized by a lying header is reported as a crash), it checks:
//! - an accepted array has 1 to 4 dims, `data.len()` = product of dims, and re-encodes with
//!   `write_idx` to exactly the input (the format has one encoding per array);
//! - the gzip path agrees with an independent full decompression (flate2's `MultiGzDecoder`)
//!   followed by `parse_idx`: the same array when both succeed, and neither accepts what the
//!   other rejects (except the reader's size limit).
#![no_main]

#[path = "common.rs"]
mod common;

use std::io::Read;

use ladder::data::{MAX_IDX_BYTES, parse_idx, read_idx_file, write_idx};
use libfuzzer_sys::fuzz_target;

/// Cap on the oracle's own decompression; far above what a libFuzzer input (4 KiB by default,
/// deflate expands at most ~1032:1) can produce, so it only guards runs with a huge -max_len.
const ORACLE_CAP: u64 = 64 << 20;

fuzz_target!(|data: &[u8]| {
    let parsed = parse_idx(data);
    common::report("parse_idx", &parsed);
    if let Ok(array) = &parsed {
        assert!((1..=4).contains(&array.dims.len()), "dims {:?}", array.dims);
        assert_eq!(
            Some(array.data.len()),
            array
                .dims
                .iter()
                .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        );
        assert_eq!(
            write_idx(&array.dims, &array.data),
            data,
            "re-encoding differs from the input"
        );
    }

    if data.starts_with(&[0x1f, 0x8b]) {
        let dir = common::tempdir();
        let path = dir.path().join("x.gz");
        std::fs::write(&path, data).expect("write temp file");
        let from_file = read_idx_file(&path);
        common::report("read_idx_file(x.gz)", &from_file);

        let mut raw = Vec::new();
        let full = flate2::read::MultiGzDecoder::new(data)
            .take(ORACLE_CAP)
            .read_to_end(&mut raw);
        if raw.len() as u64 >= ORACLE_CAP {
            return;
        }
        match (&from_file, full) {
            (Ok(array), Ok(_)) => assert_eq!(
                parse_idx(&raw).ok().as_ref(),
                Some(array),
                "read_idx_file disagrees with decompress + parse_idx"
            ),
            (Ok(_), Err(e)) => {
                panic!("read_idx_file accepted a gzip stream that does not decompress: {e}")
            }
            (Err(e), Ok(_)) if raw.len() <= MAX_IDX_BYTES && parse_idx(&raw).is_ok() => {
                panic!("read_idx_file rejected a valid gzipped IDX file: {e}")
            }
            _ => {}
        }
    }
});

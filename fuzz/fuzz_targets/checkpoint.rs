//! Checkpoint reader: `ladder::train::Checkpoint::load` on arbitrary bytes written to a temp
//! file.
//!
//! Random mutations almost never keep the CRC-32 right, so an input that starts with the
//! magic `LADDERCK` and is long enough is also loaded a second time with its CRC field
//! recomputed: that lets the fuzzer reach the length handling and the JSON header.
//!
//! Besides "never panics" it checks that a checkpoint that loads can be saved again with
//! `Checkpoint::save` and that the re-saved file loads to the same header and records.
#![no_main]

#[path = "common.rs"]
mod common;

use std::path::Path;

use ladder::train::Checkpoint;
use libfuzzer_sys::fuzz_target;

const MAGIC: &[u8; 8] = b"LADDERCK";
/// Magic, version (u32), three u64 lengths, then the CRC-32 of the body.
const CRC_AT: usize = 8 + 4 + 3 * 8;
const FIXED_LEN: usize = CRC_AT + 4;

fn check(dir: &Path, bytes: &[u8], what: &str) {
    let path = dir.join("checkpoint.bin");
    std::fs::write(&path, bytes).expect("write temp file");
    let loaded = Checkpoint::load(&path);
    common::report(what, &loaded);
    let Ok(checkpoint) = loaded else {
        return;
    };
    assert!(FIXED_LEN + checkpoint.model.len() + checkpoint.optimizer.len() <= bytes.len());

    let resaved = dir.join("resaved.bin");
    checkpoint
        .save(&resaved)
        .expect("saving a loaded checkpoint");
    let back = Checkpoint::load(&resaved)
        .unwrap_or_else(|e| panic!("a loaded checkpoint, saved again, does not load: {e}"));
    // Compared as JSON: moments are f32 stored by bit pattern, so they may be NaN.
    let json = |c: &Checkpoint| serde_json::to_string(&c.header).expect("header serialises");
    assert_eq!(json(&back), json(&checkpoint));
    assert_eq!(&back.model[..], &checkpoint.model[..]);
    assert_eq!(&back.optimizer[..], &checkpoint.optimizer[..]);
}

fuzz_target!(|data: &[u8]| {
    let dir = common::tempdir();
    check(dir.path(), data, "load");

    if data.len() >= FIXED_LEN && data.starts_with(MAGIC) {
        let crc = crc32fast::hash(&data[FIXED_LEN..]).to_le_bytes();
        if data[CRC_AT..FIXED_LEN] != crc {
            let mut fixed = data.to_vec();
            fixed[CRC_AT..FIXED_LEN].copy_from_slice(&crc);
            check(dir.path(), &fixed, "load (CRC fixed up)");
        }
    }
});

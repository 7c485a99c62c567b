//! The tabular reader: `ladder::data::{read_csv, load_csv}` on arbitrary bytes written to a
//! file, with the class in the last column or the first, with and without a header.
//!
//! Besides "never panics" it checks what is accepted: one class per row, every class inside
//! the declared range, `columns` features per row, all finite; and after standardisation the
//! training part's features are finite too.
#![no_main]

#[path = "common.rs"]
mod common;

use ladder::data::{CsvSpec, load_csv, read_csv};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = common::tempdir();
    let path = dir.path().join("t.csv");
    std::fs::write(&path, data).expect("write");
    for (label_column, has_header, first_label) in
        [(None, false, 1), (Some(0), true, 0), (Some(2), false, -3)]
    {
        let spec = CsvSpec {
            label_column,
            has_header,
            first_label,
            num_classes: 7,
        };
        let table = read_csv(&path, &spec);
        common::report("read_csv", &table);
        if let Ok(t) = &table {
            assert!(t.columns >= 1);
            assert_eq!(t.features.len(), t.labels.len() * t.columns);
            assert!(t.labels.iter().all(|&l| l < 7));
            assert!(t.features.iter().all(|v| v.is_finite()));
        }
        let pair = load_csv(&path, None, 0.3, &spec);
        common::report("load_csv", &pair);
        if let Ok(p) = &pair {
            assert!(p.train.len() > 0 && p.test.len() > 0);
            assert!(p.train.images.iter().all(|v| v.is_finite()), "non-finite after standardising");
        }
    }
});

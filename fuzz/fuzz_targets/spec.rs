//! Layer-spec grammar and seed lists: `ladder::model::spec::{parse_layers, parse_float_list,
//! parse_decoder}`, the convolutional grammar `ladder::model::layers::{parse_layer_kinds, plan}` and `ladder::experiment::parse_seeds` on arbitrary UTF-8 (other input is
//! skipped). `parse_float_list` and `parse_decoder` are called for every n in 0..=8.
//!
//! Besides "never panics" it checks the shape of what is accepted: widths are positive and
//! one per `-`-separated part, float and decoder lists have exactly n entries, seed lists
//! have no duplicates.
#![no_main]

#[path = "common.rs"]
mod common;

use std::collections::HashSet;

use ladder::experiment::parse_seeds;
use ladder::model::layers::{MAX_VALUES, Shape, parse_layer_kinds, plan};
use ladder::model::spec::{parse_decoder, parse_float_list, parse_layers};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };

    let layers = parse_layers(s);
    common::report("parse_layers", &layers);
    if let Ok(widths) = &layers {
        assert!(
            widths.iter().all(|&w| w > 0),
            "zero width accepted: {widths:?}"
        );
        assert_eq!(widths.len(), s.split('-').count());
    }

    // The convolutional grammar, and the shapes of the accepted layers on a few inputs.
    let kinds = parse_layer_kinds(s);
    common::report("parse_layer_kinds", &kinds);
    if let Ok(kinds) = &kinds {
        assert_eq!(kinds.len(), s.split('-').count());
        let inputs = [
            Shape { channels: 1, height: 28, width: 28 },
            Shape { channels: 3, height: 32, width: 32 },
            Shape::vector(784),
        ];
        for input in inputs {
            let layers = plan(input, kinds);
            common::report("plan", &layers);
            if let Ok(layers) = &layers {
                assert_eq!(layers.len(), kinds.len());
                assert_eq!(layers[0].input, input);
                for w in layers.windows(2) {
                    assert_eq!(w[0].output, w[1].input);
                }
                for g in layers {
                    assert!(g.output.units() > 0 && g.output.units() <= MAX_VALUES);
                }
            }
        }
    }

    for n in 0..=8 {
        let floats = parse_float_list(s, n, "x");
        common::report(&format!("parse_float_list(n={n})"), &floats);
        if let Ok(values) = &floats {
            assert_eq!(values.len(), n);
        }
        let decoder = parse_decoder(s, n);
        common::report(&format!("parse_decoder(n={n})"), &decoder);
        if let Ok(kinds) = &decoder {
            assert_eq!(kinds.len(), n);
        }
    }

    let seeds = parse_seeds(s);
    common::report("parse_seeds", &seeds);
    if let Ok(seeds) = &seeds {
        let distinct: HashSet<u64> = seeds.iter().copied().collect();
        assert_eq!(distinct.len(), seeds.len(), "duplicate seeds accepted");
    }
});

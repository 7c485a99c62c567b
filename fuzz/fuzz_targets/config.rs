//! Training configuration: `ladder::train::TrainConfig::from_toml_str` on arbitrary UTF-8
//! (other input is skipped) and, when it parses, `.validate()` and `.ladder_spec(784)`; the
//! same text as a semantic-noise configuration (`SemanticConfig`), validated and planned for
//! MNIST and CIFAR-10 images.
//!
//! Besides "never panics" it checks the round trip that run directories rely on (a run
//! writes `config.toml` with `to_toml`, `resume`/`evaluate` read it back): the written text
//! parses, re-serialises to the same text, and validates the same way.
#![no_main]

#[path = "common.rs"]
mod common;

use ladder::train::TrainConfig;
use ladder::train::semantic::SemanticConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    semantic(text);
    let parsed = TrainConfig::from_toml_str(text);
    common::report("from_toml_str", &parsed);
    let Ok(config) = parsed else {
        return;
    };
    let valid = config.validate();
    common::report("validate", &valid);
    // A vector and a grey image of 784 values: fully connected networks flatten either,
    // convolutional ones need the image.
    for shape in [&[784][..], &[28, 28][..]] {
        let spec = config.ladder_spec(shape);
        common::report(&format!("ladder_spec({shape:?})"), &spec);
        if let Ok(spec) = &spec {
            assert_eq!(spec.dims.first(), Some(&784));
            assert_eq!(spec.dims.last(), Some(&config.num_classes));
        }
    }

    let written = config.to_toml();
    let back = TrainConfig::from_toml_str(&written)
        .unwrap_or_else(|e| panic!("to_toml output does not parse back: {e}\n{written}"));
    assert_eq!(
        back.to_toml(),
        written,
        "TOML round trip changed the configuration"
    );
    assert_eq!(back.validate().is_ok(), valid.is_ok());
});

/// A semantic-noise configuration: parses or not, validates or not, plans or not, never
/// panics; what it writes reads back the same.
fn semantic(text: &str) {
    let parsed = SemanticConfig::from_toml_str(text);
    common::report("SemanticConfig::from_toml_str", &parsed);
    let Ok(config) = parsed else {
        return;
    };
    common::report("SemanticConfig::validate", &config.validate());
    for shape in [&[28, 28][..], &[3, 32, 32][..]] {
        let layers = config.plan(shape);
        common::report(&format!("SemanticConfig::plan({shape:?})"), &layers);
        if let Ok(layers) = layers {
            assert_eq!(layers.last().map(|g| g.output.units()), Some(config.num_classes));
        }
    }
    let written = config.to_toml();
    let back = SemanticConfig::from_toml_str(&written)
        .unwrap_or_else(|e| panic!("to_toml output does not parse back: {e}\n{written}"));
    assert_eq!(
        back.to_toml(),
        written,
        "TOML round trip changed the semantic configuration"
    );
}

//! Configuration in layers, for every method: a base (the defaults or a preset), then the fields
//! a TOML file sets, then the fields the command line sets. A field is declared once, in its
//! configuration type; this is the only place the layers are merged.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{LadderError, Result};
use crate::train::config::{Method, TrainConfig};

/// `base` with the fields `file` sets, then the fields in `flags` (a table of the flags given,
/// by field name). The file is read as a `C` first, so an unknown or mistyped field is an
/// error naming the file; a flag of the wrong type is an error naming the field.
pub fn resolve<C: Serialize + DeserializeOwned>(
    base: &C,
    file: Option<&Path>,
    flags: &toml::Table,
) -> Result<C> {
    let mut merged = toml::Table::try_from(base).expect("a configuration serialises");
    if let Some(path) = file {
        let format = |reason: String| LadderError::Format {
            path: path.into(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| LadderError::io(path, e))?;
        let set: toml::Table = toml::from_str(&text).map_err(|e| format(e.to_string()))?;
        // Parsed as the configuration, so that `lr = 1` is the float 1.0, as the field is.
        let typed: C = toml::from_str(&text).map_err(|e| format(e.to_string()))?;
        let typed = toml::Table::try_from(&typed).expect("a configuration serialises");
        for key in set.keys() {
            if let Some(v) = typed.get(key) {
                merged.insert(key.clone(), v.clone());
            }
        }
    }
    for (key, value) in flags {
        merged.insert(key.clone(), value.clone());
    }
    merged
        .try_into()
        .map_err(|e| LadderError::Setting(format!("bad configuration: {e}")))
}

/// `base` with the fields `settings` sets (a JSON object by field name: the Python package's
/// keyword arguments; `null` is an optional field's `None`). An unknown field or a value of
/// the wrong type is an error naming it.
pub fn with_settings<C: Serialize + DeserializeOwned>(
    base: &C,
    settings: &serde_json::Map<String, serde_json::Value>,
) -> Result<C> {
    let mut merged = match serde_json::to_value(base).expect("a configuration serialises") {
        serde_json::Value::Object(fields) => fields,
        _ => unreachable!("a configuration is a struct"),
    };
    for (key, value) in settings {
        merged.insert(key.clone(), value.clone());
    }
    serde_json::from_value(serde_json::Value::Object(merged))
        .map_err(|e| LadderError::Setting(format!("bad configuration: {e}")))
}

/// The Ladder configuration of `preset` (the defaults without one) trained by `method`, with
/// the fields `settings` sets, checked: what `ladder train --preset P --method M --FIELD V`
/// resolves to.
pub fn ladder_config(
    preset: Option<&str>,
    method: Method,
    settings: &serde_json::Map<String, serde_json::Value>,
) -> Result<TrainConfig> {
    let base = match preset {
        Some(p) => TrainConfig::preset(p)?,
        None => TrainConfig::default(),
    };
    let config = with_settings(&method.apply(base), settings)?;
    config.validate()?;
    Ok(config)
}

/// The flags a command-line struct holds, as a table by field name (fields left `None` are
/// skipped by their `skip_serializing_if`).
pub fn flag_table(flags: &impl Serialize) -> toml::Table {
    toml::Table::try_from(flags).expect("flags serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_override_the_preset_and_name_a_bad_field() {
        let settings = |json: &str| serde_json::from_str(json).unwrap();
        let c = ladder_config(
            Some("mnist-1000-full"),
            Method::Ladder,
            &settings(r#"{"epochs": 2, "lr": 1, "unlabeled_samples": 500}"#),
        )
        .unwrap();
        let preset = TrainConfig::preset("mnist-1000-full").unwrap();
        assert_eq!((c.epochs, c.lr, c.unlabeled_samples), (2, 1.0, Some(500)));
        assert_eq!(c.labeled_samples, preset.labeled_samples);
        let vat = ladder_config(None, Method::Vat, &settings("{}")).unwrap();
        assert_eq!(vat, Method::Vat.apply(TrainConfig::default()));
        let e = ladder_config(None, Method::Ladder, &settings(r#"{"lrr": 1}"#)).unwrap_err();
        assert!(e.to_string().contains("unknown field `lrr`"), "{e}");
        let e = ladder_config(None, Method::Ladder, &settings(r#"{"epochs": "x"}"#)).unwrap_err();
        assert!(e.to_string().contains("bad configuration"), "{e}");
        let e = ladder_config(None, Method::Ladder, &settings(r#"{"batch_size": 0}"#));
        assert!(e.is_err(), "validated");
    }

    #[test]
    fn the_file_overrides_the_base_and_the_flags_override_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("c.toml");
        std::fs::write(&path, "lr = 1\nepochs = 7\n").unwrap();
        let base = TrainConfig {
            batch_size: 50,
            ..TrainConfig::default()
        };
        let mut flags = toml::Table::new();
        flags.insert("epochs".into(), toml::Value::Integer(3));
        let c = resolve(&base, Some(&path), &flags).unwrap();
        assert_eq!((c.lr, c.epochs, c.batch_size), (1.0, 3, 50));
        std::fs::write(&path, "lrr = 1\n").unwrap();
        let err = resolve(&base, Some(&path), &toml::Table::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("c.toml") && err.contains("lrr"), "{err}");
    }
}

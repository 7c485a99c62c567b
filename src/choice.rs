//! One convention for the named choices of the command line and configuration files
//! (activations, adversarial-noise kinds, plain models and optimizers, semantic models): each
//! is a `clap::ValueEnum`, whose kebab-case names are also its serde names, its `Display`, its
//! `FromStr` (for lists such as `--models a,b`) and, through `value_variants`, the list of all
//! of them. [`named_choice!`] writes the two trait impls.

use clap::ValueEnum;

/// The name of `choice`, as the command line and configuration files write it.
pub fn name<E: ValueEnum>(choice: &E) -> String {
    choice
        .to_possible_value()
        .expect("no choice is hidden")
        .get_name()
        .to_string()
}

/// Every choice of `E`, in declaration order.
pub fn all<E: ValueEnum + Clone>() -> Vec<E> {
    E::value_variants().to_vec()
}

/// `s` as a choice of `E` (or one of its aliases, case ignored); the error names `what` and
/// the choices.
pub fn parse<E: ValueEnum + Clone>(s: &str, what: &str) -> Result<E, String> {
    E::from_str(s.trim(), true).map_err(|_| {
        let names: Vec<String> = all::<E>().iter().map(name).collect();
        format!("unknown {what} '{s}': one of {}", names.join(", "))
    })
}

/// `Display` and `FromStr` of a [`ValueEnum`] choice by its names; `$what` names it in errors.
#[macro_export]
macro_rules! named_choice {
    ($t:ty, $what:literal) => {
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&$crate::choice::name(self))
            }
        }

        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                $crate::choice::parse(s, $what)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use crate::model::Activation;
    use crate::model::semantic::SemanticModel;
    use crate::noise::AdvKind;
    use crate::train::plain::{PlainModel, PlainOptimizer};

    /// Display, FromStr, clap and serde agree on every choice's name.
    fn round_trips<E>()
    where
        E: clap::ValueEnum
            + Clone
            + PartialEq
            + std::fmt::Debug
            + std::fmt::Display
            + std::str::FromStr<Err = String>
            + serde::Serialize
            + serde::de::DeserializeOwned,
    {
        for e in super::all::<E>() {
            let name = super::name(&e);
            assert_eq!(name.parse::<E>().unwrap(), e);
            // Display is the name (plain models show the thesis's capital letter).
            assert_eq!(e.to_string().to_lowercase(), name);
            assert_eq!(e.to_string().parse::<E>().unwrap(), e);
            assert_eq!(serde_json::to_string(&e).unwrap(), format!("\"{name}\""));
            let back: E = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert_eq!(back, e);
        }
        let err = "nonsense".parse::<E>().unwrap_err();
        assert!(err.contains("'nonsense': one of"), "{err}");
    }

    #[test]
    fn every_choice_has_one_name_everywhere() {
        round_trips::<Activation>();
        round_trips::<AdvKind>();
        round_trips::<PlainModel>();
        round_trips::<PlainOptimizer>();
        round_trips::<SemanticModel>();
        assert_eq!("adversarial".parse::<PlainModel>().unwrap(), PlainModel::B);
        assert_eq!(super::all::<AdvKind>().len(), 4);
    }
}

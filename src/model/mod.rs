//! The model pieces: layer-spec grammar, encoder, decoder, combinators and the Ladder itself,
//! plain MLPs, and the semantic-noise-modeling network (paper 003).

pub mod combinator;
pub mod consistency;
pub mod decoder;
pub mod encoder;
pub mod ladder;
pub mod layers;
pub mod mlp;
pub mod semantic;
pub mod spec;
pub mod vat;

pub use crate::ops::Shape;
pub use combinator::{Combinator, CombinatorKind};
pub use decoder::Decoder;
pub use encoder::Encoder;
pub use ladder::{CostTerms, LadderBatch, LadderNetwork};
pub use layers::{LayerGeom, LayerKind};
pub use spec::{Activation, LadderSpec};

//! The pixel values of a data set, kept as the source gave them: bytes (IDX, CIFAR, PNG and
//! JPEG sources), each standing for `byte / 255`, in a quarter of the memory floats take, or
//! floats (preprocessed sets, CSV features, arrays a caller gave). Bytes become floats only
//! where they are read, a batch or a pass's chunk at a time, with the one scaling every loader
//! used, so the values are those of a float copy. A set and its subsets that take every row
//! share one copy.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

/// Values of `n × dim` examples, row-major.
#[derive(Debug, Clone)]
pub enum Pixels {
    /// Bytes, each the value `byte / 255`.
    Bytes(Arc<[u8]>),
    /// Values as they are.
    Floats(Arc<[f32]>),
}

/// The value a byte stands for: the scaling of every byte source.
pub fn byte_value(b: u8) -> f32 {
    f32::from(b) / 255.0
}

impl Pixels {
    /// Bytes kept as bytes.
    pub fn bytes(v: Vec<u8>) -> Self {
        Pixels::Bytes(v.into())
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Pixels::Bytes(b) => b.len(),
            Pixels::Floats(f) => f.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values at `range` (indices of values, not rows) as floats: borrowed from floats,
    /// converted from bytes.
    pub fn values(&self, range: Range<usize>) -> Cow<'_, [f32]> {
        match self {
            Pixels::Bytes(b) => Cow::Owned(b[range].iter().map(|&v| byte_value(v)).collect()),
            Pixels::Floats(f) => Cow::Borrowed(&f[range]),
        }
    }

    /// Every value as a float (a whole float copy of a byte set: for test-sized sets and
    /// one-off work, not for training sets, which are read a batch at a time).
    pub fn all(&self) -> Cow<'_, [f32]> {
        self.values(0..self.len())
    }

    /// The values when they are kept as floats.
    pub fn as_floats(&self) -> Option<&[f32]> {
        match self {
            Pixels::Floats(f) => Some(f),
            Pixels::Bytes(_) => None,
        }
    }

    /// Appends the values at `range` to `out`, as floats.
    pub fn extend_into(&self, range: Range<usize>, out: &mut Vec<f32>) {
        match self {
            Pixels::Bytes(b) => out.extend(b[range].iter().map(|&v| byte_value(v))),
            Pixels::Floats(f) => out.extend_from_slice(&f[range]),
        }
    }

    /// The values to change in place: a byte set becomes floats first (a preprocessing step
    /// turns it into one preprocessed float copy), a shared one is copied.
    pub fn to_mut(&mut self) -> &mut [f32] {
        if let Pixels::Bytes(b) = self {
            *self = Pixels::Floats(b.iter().map(|&v| byte_value(v)).collect());
        }
        match self {
            Pixels::Floats(f) => Arc::make_mut(f),
            Pixels::Bytes(_) => unreachable!("converted above"),
        }
    }

    /// The rows `rows` of `dim` values each, in that order, kept as bytes or floats as they are.
    pub fn gather(&self, rows: &[usize], dim: usize) -> Pixels {
        fn pick<T: Copy>(v: &[T], rows: &[usize], dim: usize) -> Arc<[T]> {
            let mut out = Vec::with_capacity(rows.len() * dim);
            for &i in rows {
                out.extend_from_slice(&v[i * dim..(i + 1) * dim]);
            }
            out.into()
        }
        match self {
            Pixels::Bytes(b) => Pixels::Bytes(pick(b, rows, dim)),
            Pixels::Floats(f) => Pixels::Floats(pick(f, rows, dim)),
        }
    }

    /// The values of `parts`, one after another (bytes stay bytes when every part is bytes).
    pub fn joined(parts: &[&Pixels]) -> Pixels {
        let bytes: Option<Vec<&[u8]>> = parts
            .iter()
            .map(|p| match p {
                Pixels::Bytes(b) => Some(&b[..]),
                Pixels::Floats(_) => None,
            })
            .collect();
        match bytes {
            Some(b) => Pixels::Bytes(b.concat().into()),
            None => {
                let mut v = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
                for p in parts {
                    p.extend_into(0..p.len(), &mut v);
                }
                v.into()
            }
        }
    }

    /// Bytes of memory the values take.
    pub fn memory(&self) -> usize {
        match self {
            Pixels::Bytes(b) => b.len(),
            Pixels::Floats(f) => f.len() * 4,
        }
    }
}

impl From<Vec<f32>> for Pixels {
    fn from(v: Vec<f32>) -> Self {
        Pixels::Floats(v.into())
    }
}

/// Equal values, however they are kept.
impl PartialEq for Pixels {
    fn eq(&self, other: &Pixels) -> bool {
        match (self, other) {
            (Pixels::Bytes(a), Pixels::Bytes(b)) => a == b,
            _ => self.all() == other.all(),
        }
    }
}

impl PartialEq<Vec<f32>> for Pixels {
    fn eq(&self, other: &Vec<f32>) -> bool {
        *self.all() == other[..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_as_the_loaders_scaled_them() {
        let p = Pixels::bytes(vec![0, 51, 255, 1]);
        assert_eq!(p, vec![0.0, 0.2, 1.0, 1.0 / 255.0]);
        assert_eq!(&*p.values(1..3), &[0.2, 1.0]);
        let mut out = vec![9.0];
        p.extend_into(2..4, &mut out);
        assert_eq!(out, vec![9.0, 1.0, 1.0 / 255.0]);
        assert_eq!((p.memory(), Pixels::from(vec![0.0; 4]).memory()), (4, 16));
    }

    #[test]
    fn gathering_keeps_the_kind_and_changing_makes_floats() {
        let p = Pixels::bytes(vec![1, 2, 3, 4, 5, 6]);
        let g = p.gather(&[2, 0], 2);
        assert!(matches!(g, Pixels::Bytes(_)));
        assert_eq!(g, Pixels::bytes(vec![5, 6, 1, 2]));
        let mut m = p.clone();
        m.to_mut()[0] = 7.0;
        assert!(matches!(m, Pixels::Floats(_)));
        assert_eq!(
            p,
            Pixels::bytes(vec![1, 2, 3, 4, 5, 6]),
            "the shared copy is untouched"
        );
        assert_eq!(m.values(0..2).to_vec(), vec![7.0, byte_value(2)]);
        assert_eq!(Pixels::joined(&[&p, &Pixels::bytes(vec![9])]).memory(), 7);
        let mixed = Pixels::joined(&[&p, &vec![0.5].into()]);
        assert_eq!((mixed.len(), mixed.memory()), (7, 28));
        assert_eq!(mixed.values(5..7).to_vec(), vec![byte_value(6), 0.5]);
    }
}

//! Checkpoints: everything needed to continue or evaluate a run, in one file written atomically.
//!
//! Layout: `LADDERCK`, format version (u32), lengths of the JSON header, the model record and
//! the optimizer record (u64 each), a CRC-32 of everything after it, then the three parts
//! ([`write_sections`], which plain-network model files share). A
//! file that is truncated, corrupt, of another version or of another model shape is refused
//! with an error naming it; it is never silently replaced by a fresh start.

use std::io::Write;
use std::path::{Path, PathBuf};

use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{LadderError, Result};
use crate::train::config::TrainConfig;
use crate::train::metrics::CostSummary;

const MAGIC: &[u8; 8] = b"LADDERCK";
/// Bumped whenever the layout or the meaning of a field changes.
pub const FORMAT_VERSION: u32 = 1;

/// Per-layer population mean and variance of z_pre.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMoments {
    #[serde(with = "f32_bits")]
    pub mean: Vec<f32>,
    #[serde(with = "f32_bits")]
    pub var: Vec<f32>,
}

/// Floats stored by their bit patterns: decimal JSON text does not always read back to the
/// same value, and a resumed run must continue from exactly the same numbers.
mod f32_bits {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
        v.iter()
            .map(|x| x.to_bits())
            .collect::<Vec<u32>>()
            .serialize(s)
    }

    /// Bit patterns; decimal numbers (written by versions before the switch to bits, which
    /// JSON always marks with a point or exponent) are read as they are.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Bits(u32),
        Decimal(f32),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        Ok(Vec::<Stored>::deserialize(d)?
            .into_iter()
            .map(|v| match v {
                Stored::Bits(b) => f32::from_bits(b),
                Stored::Decimal(x) => x,
            })
            .collect())
    }
}

/// A [`CostSummary`] stored by bit patterns (see `f32_bits`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExactCost {
    total: u64,
    supervised: u64,
    denoising: Vec<Option<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    virtual_adversarial: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    entropy: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    consistency: Option<u64>,
}

impl From<&CostSummary> for ExactCost {
    fn from(c: &CostSummary) -> Self {
        ExactCost {
            total: c.total.to_bits(),
            supervised: c.supervised.to_bits(),
            denoising: c.denoising.iter().map(|d| d.map(f64::to_bits)).collect(),
            virtual_adversarial: c.virtual_adversarial.map(f64::to_bits),
            entropy: c.entropy.map(f64::to_bits),
            consistency: c.consistency.map(f64::to_bits),
        }
    }
}

impl From<&ExactCost> for CostSummary {
    fn from(c: &ExactCost) -> Self {
        CostSummary {
            total: f64::from_bits(c.total),
            supervised: f64::from_bits(c.supervised),
            denoising: c.denoising.iter().map(|d| d.map(f64::from_bits)).collect(),
            virtual_adversarial: c.virtual_adversarial.map(f64::from_bits),
            entropy: c.entropy.map(f64::from_bits),
            consistency: c.consistency.map(f64::from_bits),
        }
    }
}

/// The checkpoint's description of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointHeader {
    pub config: TrainConfig,
    /// Layer widths, input first: the model's shape.
    pub dims: Vec<usize>,
    /// Shape of one input example (`[d]`, `[H, W]` or `[C, H, W]`); absent in checkpoints of
    /// fully connected networks written before convolutional ones existed.
    #[serde(default)]
    pub input_shape: Vec<usize>,
    /// Epochs completed.
    pub epochs_done: usize,
    /// Steps completed in the epoch under way (a checkpoint taken mid-epoch).
    #[serde(default)]
    pub steps_done: usize,
    /// Sum of that epoch's step costs so far.
    #[serde(default)]
    pub partial_cost: Option<ExactCost>,
    /// Training time so far, seconds.
    pub train_seconds: f64,
    /// Batch-norm moments of the training set for inference, once computed.
    pub moments: Option<Vec<StoredMoments>>,
}

/// A checkpoint read into memory.
pub struct Checkpoint {
    pub header: CheckpointHeader,
    pub model: Bytes,
    pub optimizer: Bytes,
}

fn corrupt(path: &Path, reason: impl Into<String>) -> LadderError {
    LadderError::Checkpoint {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Writes `data` to `path` atomically: a temporary file in the same directory, synced, then
/// renamed over the target, so a crash or a full disk leaves the previous file intact.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    write_atomic_with(path, |f| f.write_all(data))
}

/// [`write_atomic`] through a temporary file of this process's own, for files that several
/// processes may write at once (the shared files of a sweep run by many tasks): each writer's
/// file replaces the last one whole.
pub fn write_shared(path: &Path, data: &[u8]) -> Result<()> {
    static WRITE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}-{n}.tmp", std::process::id()));
    write_via(path, &path.with_file_name(name), |f| f.write_all(data))
}

/// Creates `path` holding `data` unless it exists, atomically on NFS too (a hard link of a
/// complete file): `Ok(None)` when this call created it, else what the file holds.
pub fn create_once(path: &Path, data: &[u8]) -> Result<Option<Vec<u8>>> {
    if let Ok(existing) = std::fs::read(path) {
        return Ok(Some(existing));
    }
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.new", std::process::id()));
    let tmp = path.with_file_name(name);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(LadderError::io(&tmp, e));
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read(path)
            .map(Some)
            .map_err(|e| LadderError::io(path, e)),
        Err(e) => Err(LadderError::io(path, e)),
    }
}

/// [`write_atomic`] of what `fill` writes, so large files need no copy in memory first.
fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    write_via(path, &temp_path(path), fill)
}

/// Writes `path` by filling `tmp`, syncing it and renaming it over `path`.
fn write_via(
    path: &Path,
    tmp: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    let result = (|| {
        let mut f = std::fs::File::create(tmp)?;
        fill(&mut f)?;
        f.sync_all()?;
        std::fs::rename(tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(tmp);
        LadderError::io(path, e)
    })
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes `module` after a JSON `header`, as two [`write_sections`] sections, atomically: the
/// trained-network files of plain and semantic-noise runs.
pub fn save_module<M: burn::module::Module>(
    path: &Path,
    magic: &[u8; 8],
    header: &impl Serialize,
    module: &M,
) -> Result<()> {
    let head = serde_json::to_vec(header).expect("header serialises");
    let record = module
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| LadderError::Setting(format!("cannot serialise the network: {e}")))?;
    write_sections_atomic(path, magic, &[&head, &record])
}

/// Reads a file of [`save_module`] (a `what`): its header, then the stored values loaded into
/// the module that `skeleton` builds from the header. Any problem names the file.
pub fn load_module<H: serde::de::DeserializeOwned, M: burn::module::Module>(
    path: &Path,
    magic: &[u8; 8],
    what: &str,
    skeleton: impl FnOnce(&H) -> Result<M>,
) -> Result<(H, M)> {
    let bad = |reason: String| LadderError::Checkpoint {
        path: path.into(),
        reason,
    };
    let data = std::fs::read(path).map_err(|e| LadderError::io(path, e))?;
    let parts = decode_sections(&data, magic, 2, what).map_err(bad)?;
    let header: H =
        serde_json::from_slice(parts[0]).map_err(|e| bad(format!("unreadable header: {e}")))?;
    let skeleton = skeleton(&header).map_err(|e| bad(e.to_string()))?;
    let record = burn::store::ModuleRecord::from_bytes(Bytes::from_bytes_vec(parts[1].to_vec()))
        .map_err(|e| bad(e.to_string()))?;
    let module = skeleton
        .try_load_record(record)
        .map_err(|e| bad(e.to_string()))?;
    Ok((header, module))
}

/// Writes `sections` framed as `magic`, [`FORMAT_VERSION`], one u64 length per section, a
/// CRC-32 of the body, then the sections, each straight from its own buffer.
pub fn write_sections(
    out: &mut impl Write,
    magic: &[u8; 8],
    sections: &[&[u8]],
) -> std::io::Result<()> {
    let mut crc = crc32fast::Hasher::new();
    sections.iter().for_each(|s| crc.update(s));
    let mut head = Vec::with_capacity(8 + 4 + 8 * sections.len() + 4);
    head.extend_from_slice(magic);
    head.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    for s in sections {
        head.extend_from_slice(&(s.len() as u64).to_le_bytes());
    }
    head.extend_from_slice(&crc.finalize().to_le_bytes());
    out.write_all(&head)?;
    sections.iter().try_for_each(|s| out.write_all(s))
}

/// [`write_sections`] to `path`, atomically.
pub fn write_sections_atomic(path: &Path, magic: &[u8; 8], sections: &[&[u8]]) -> Result<()> {
    write_atomic_with(path, |f| write_sections(f, magic, sections))
}

/// The `n` sections of a file written by [`write_sections`] with `magic`, after checking its
/// magic, version, lengths and checksum.
pub fn decode_sections<'a>(
    data: &'a [u8],
    magic: &[u8; 8],
    n: usize,
    what: &str,
) -> std::result::Result<Vec<&'a [u8]>, String> {
    let fixed = 8 + 4 + 8 * n + 4;
    if data.len() < fixed || &data[..8] != magic {
        return Err(format!("not a {what} (bad magic or too short)"));
    }
    let u32_at = |i: usize| u32::from_le_bytes(data[i..i + 4].try_into().unwrap());
    let u64_at = |i: usize| u64::from_le_bytes(data[i..i + 8].try_into().unwrap());
    let version = u32_at(8);
    if version != FORMAT_VERSION {
        return Err(format!(
            "format version {version}, this program reads version {FORMAT_VERSION}"
        ));
    }
    let lens: Vec<u64> = (0..n).map(|i| u64_at(12 + 8 * i)).collect();
    let expected = lens
        .iter()
        .try_fold(fixed as u64, |acc, &l| acc.checked_add(l))
        .ok_or("length fields overflow")?;
    if expected != data.len() as u64 {
        return Err(format!(
            "truncated or padded: the header announces {expected} bytes, the file has {}",
            data.len()
        ));
    }
    let body = &data[fixed..];
    if crc32fast::hash(body) != u32_at(12 + 8 * n) {
        return Err("checksum mismatch: the file is corrupt".into());
    }
    let mut start = 0;
    Ok(lens
        .iter()
        .map(|&l| {
            let part = &body[start..start + l as usize];
            start += l as usize;
            part
        })
        .collect())
}

impl Checkpoint {
    /// Serialises and writes the checkpoint atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let header = serde_json::to_vec(&self.header).expect("header serialises");
        write_sections_atomic(path, MAGIC, &[&header, &self.model, &self.optimizer])
    }

    /// Reads and checks a checkpoint file.
    pub fn load(path: &Path) -> Result<Checkpoint> {
        let data = std::fs::read(path).map_err(|e| LadderError::io(path, e))?;
        Self::parse(&data).map_err(|reason| corrupt(path, reason))
    }

    fn parse(data: &[u8]) -> std::result::Result<Checkpoint, String> {
        let parts = decode_sections(data, MAGIC, 3, "ladder checkpoint")?;
        let header: CheckpointHeader =
            serde_json::from_slice(parts[0]).map_err(|e| format!("unreadable header: {e}"))?;
        Ok(Checkpoint {
            header,
            model: Bytes::from_bytes_vec(parts[1].to_vec()),
            optimizer: Bytes::from_bytes_vec(parts[2].to_vec()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            header: CheckpointHeader {
                config: TrainConfig::default(),
                dims: vec![784, 10],
                input_shape: vec![28, 28],
                epochs_done: 3,
                steps_done: 7,
                partial_cost: None,
                train_seconds: 1.5,
                moments: None,
            },
            model: Bytes::from_bytes_vec(vec![1, 2, 3, 4]),
            optimizer: Bytes::from_bytes_vec(vec![9; 10]),
        }
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.bin");
        sample().save(&path).unwrap();
        let back = Checkpoint::load(&path).unwrap();
        assert_eq!(back.header, sample().header);
        assert_eq!(&back.model[..], &[1, 2, 3, 4]);
        assert_eq!(back.optimizer.len(), 10);
        assert!(!temp_path(&path).exists());
    }

    #[test]
    fn truncated_corrupt_and_foreign_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.bin");
        sample().save(&path).unwrap();
        let good = std::fs::read(&path).unwrap();

        std::fs::write(&path, &good[..good.len() - 3]).unwrap();
        let err = Checkpoint::load(&path).err().unwrap().to_string();
        assert!(err.contains("truncated") && err.contains("c.bin"), "{err}");

        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 0xff;
        std::fs::write(&path, &flipped).unwrap();
        let err = Checkpoint::load(&path).err().unwrap().to_string();
        assert!(err.contains("checksum"), "{err}");

        let mut other_version = good.clone();
        other_version[8] = 99;
        std::fs::write(&path, &other_version).unwrap();
        let err = Checkpoint::load(&path).err().unwrap().to_string();
        assert!(err.contains("version 99"), "{err}");

        std::fs::write(&path, b"hello").unwrap();
        let err = Checkpoint::load(&path).err().unwrap().to_string();
        assert!(err.contains("not a ladder checkpoint"), "{err}");
    }
}

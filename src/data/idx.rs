//! IDX files, the format of the original MNIST distribution.
//!
//! Layout: a 4-byte magic `00 00 TT NN` (TT = element type, NN = number of
//! dimensions), NN big-endian `u32` dimension sizes, then the payload in
//! row-major order. Only unsigned bytes (TT = 0x08) are supported, which is
//! what image and label files use.
//!
//! Files come from users, so the header is validated against the real input
//! length before anything is allocated, and gzip input is decompressed only as
//! far as the header says (capped at [`MAX_IDX_BYTES`]).

use std::cmp::Ordering;
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::Path;
use std::sync::Arc;

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use super::DataError;

/// Largest IDX file (after decompression) we agree to load: 2 GiB. Far above
/// any image dataset this crate trains on, low enough that a corrupt header
/// or a gzip bomb cannot exhaust memory.
pub const MAX_IDX_BYTES: usize = 2 << 30;

/// Type code of unsigned bytes, the only element type supported.
const UBYTE: u8 = 0x08;
/// IDX arrays used here have 1 (labels) to 4 (e.g. N×H×W×C) dimensions.
const MAX_DIMS: usize = 4;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Name used in errors for data that did not come from a file.
const IN_MEMORY: &str = "<in-memory IDX data>";

/// A decoded IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimension sizes, outermost first (e.g. `[n, 28, 28]` for images).
    pub dims: Vec<usize>,
    /// Row-major payload; its length is the product of `dims`. Shared, so that a data set's
    /// images are this very buffer, never a copy of it.
    pub data: Arc<[u8]>,
}

impl IdxArray {
    /// Size of the first dimension: the number of examples in a dataset file.
    pub fn count(&self) -> usize {
        self.dims.first().copied().unwrap_or(0)
    }
}

/// Human-readable name of an IDX type code, for error messages.
pub(crate) fn type_name(code: u8) -> &'static str {
    match code {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0B => "16-bit integer",
        0x0C => "32-bit integer",
        0x0D => "32-bit float",
        0x0E => "64-bit float",
        _ => "unknown type",
    }
}

/// A validated header and the total file length it implies.
struct Header {
    dims: Vec<usize>,
    header_len: usize,
    total_len: usize,
}

/// Reads a big-endian `u32` at `offset`, or `None` past the end.
fn be_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    let chunk = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
}

/// Product of `dims`, or `None` on overflow (so a lying header cannot wrap).
fn checked_product(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Validates the header only (magic, type, rank, dims) and computes the
/// implied total length with checked arithmetic; allocates nothing sized by
/// the header.
fn parse_header(bytes: &[u8], file: &str) -> Result<Header, DataError> {
    let magic = be_u32(bytes, 0).ok_or_else(|| truncated(file, 4, bytes.len()))?;
    let [zero0, zero1, code, ndims] = magic.to_be_bytes();
    if zero0 != 0 || zero1 != 0 {
        return Err(DataError::BadMagic {
            file: file.to_owned(),
            found: magic,
        });
    }
    if code != UBYTE {
        return Err(DataError::UnsupportedType {
            file: file.to_owned(),
            code,
        });
    }
    let ndims = usize::from(ndims);
    if !(1..=MAX_DIMS).contains(&ndims) {
        return Err(bad_rank(file, ndims, "1 to 4"));
    }
    let header_len = 4 + 4 * ndims;
    let dims = (0..ndims)
        .map(|i| be_u32(bytes, 4 + 4 * i).map(|d| d as usize))
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| truncated(file, header_len, bytes.len()))?;
    let total_len = checked_product(&dims)
        .and_then(|payload| payload.checked_add(header_len))
        .ok_or_else(|| DataError::DimensionOverflow {
            file: file.to_owned(),
            dims: dims.clone(),
        })?;
    Ok(Header {
        dims,
        header_len,
        total_len,
    })
}

fn truncated(file: &str, expected: usize, found: usize) -> DataError {
    DataError::Truncated {
        file: file.to_owned(),
        expected,
        found,
    }
}

pub(crate) fn bad_rank(file: &str, found: usize, expected: &'static str) -> DataError {
    DataError::BadRank {
        file: file.to_owned(),
        found,
        expected,
    }
}

/// Checks that exactly `expected` bytes are present.
pub(crate) fn check_len(file: &str, expected: usize, found: usize) -> Result<(), DataError> {
    match found.cmp(&expected) {
        Ordering::Less => Err(truncated(file, expected, found)),
        Ordering::Greater => Err(DataError::TrailingBytes {
            file: file.to_owned(),
            expected,
            found,
        }),
        Ordering::Equal => Ok(()),
    }
}

/// Parses an in-memory, uncompressed IDX file.
///
/// The size implied by the header is checked against `bytes.len()` before the
/// payload is copied, so a header claiming billions of images fails at once.
pub fn parse_idx(bytes: &[u8]) -> Result<IdxArray, DataError> {
    parse_named(bytes, IN_MEMORY)
}

/// [`parse_idx`] with a file name for error messages.
pub(crate) fn parse_named(bytes: &[u8], file: &str) -> Result<IdxArray, DataError> {
    let header = parse_header(bytes, file)?;
    check_len(file, header.total_len, bytes.len())?;
    Ok(IdxArray {
        dims: header.dims,
        data: bytes[header.header_len..].into(),
    })
}

fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Decodes raw or gzipped IDX bytes (gzip detected by its magic `1f 8b`),
/// refusing to decompress more than `limit` bytes.
pub(crate) fn decode_named(bytes: &[u8], file: &str, limit: usize) -> Result<IdxArray, DataError> {
    if is_gzip(bytes) {
        gunzip_idx(bytes, file, limit)
    } else {
        parse_named(bytes, file)
    }
}

/// Reads one raw or gzipped IDX file.
///
/// Files larger than [`MAX_IDX_BYTES`], before or after decompression, are
/// refused. Errors name `path`.
pub fn read_idx_file(path: &Path) -> Result<IdxArray, DataError> {
    let file = path.display().to_string();
    let too_large = |bytes| DataError::TooLarge {
        file: file.clone(),
        bytes,
        limit: MAX_IDX_BYTES,
    };
    let mut f = File::open(path).map_err(io_error(path))?;
    let size = f.metadata().map_err(io_error(path))?.len();
    if size > MAX_IDX_BYTES as u64 {
        return Err(too_large(size));
    }
    let mut magic = Vec::new();
    fill_to(&mut f, &mut magic, GZIP_MAGIC.len()).map_err(io_error(path))?;
    f.rewind().map_err(io_error(path))?;
    // The cap also covers a file that grows while being read.
    let mut capped = f.take(MAX_IDX_BYTES as u64 + 1);
    if !is_gzip(&magic) {
        let known = Some(size as usize);
        return read_stream(capped, &file, MAX_IDX_BYTES, known, |e| io_error(path)(e));
    }
    super::memory::check(&file, size)?;
    let mut compressed = Vec::new();
    capped
        .read_to_end(&mut compressed)
        .map_err(io_error(path))?;
    if compressed.len() > MAX_IDX_BYTES {
        return Err(too_large(compressed.len() as u64));
    }
    gunzip_idx(&compressed, &file, MAX_IDX_BYTES)
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> DataError + '_ {
    move |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads from `reader` until `buf` holds `target` bytes or the stream ends.
fn fill_to(reader: &mut impl Read, buf: &mut Vec<u8>, target: usize) -> io::Result<()> {
    let want = target.saturating_sub(buf.len()) as u64;
    reader.take(want).read_to_end(buf).map(|_| ())
}

/// Decompresses gzipped IDX data no further than its header says.
///
/// The header is decoded first; if it claims more than `limit` bytes the
/// stream is refused without decompressing it. Otherwise the payload is
/// decompressed straight into its buffer, then one more byte reveals
/// trailing data, so memory use is bounded by the smaller of the claim and
/// the truth.
fn gunzip_idx(compressed: &[u8], file: &str, limit: usize) -> Result<IdxArray, DataError> {
    let gzip_error = |source| DataError::Gzip {
        file: file.to_owned(),
        source,
    };
    read_stream(
        MultiGzDecoder::new(compressed),
        file,
        limit,
        None,
        gzip_error,
    )
}

/// One IDX array from `reader`: the header, checked against `known_len` (the input's length,
/// when known) and `limit` before anything is allocated, then the payload read straight into
/// the buffer the data set keeps (no growing buffer, no copy: a 480,000-image set needs its
/// 376 MB once, not twice), then the rest counted as trailing bytes.
fn read_stream(
    mut reader: impl Read,
    file: &str,
    limit: usize,
    known_len: Option<usize>,
    io_err: impl Fn(io::Error) -> DataError,
) -> Result<IdxArray, DataError> {
    let mut head = Vec::new();
    fill_to(&mut reader, &mut head, 4).map_err(&io_err)?;
    let ndims = head.get(3).map_or(0, |&n| usize::from(n).min(MAX_DIMS));
    fill_to(&mut reader, &mut head, 4 + 4 * ndims).map_err(&io_err)?;
    let header = parse_header(&head, file)?;
    if let Some(len) = known_len {
        check_len(file, header.total_len, len)?;
    }
    if header.total_len > limit {
        return Err(DataError::TooLarge {
            file: file.to_owned(),
            bytes: header.total_len as u64,
            limit,
        });
    }
    super::memory::check(file, header.total_len as u64)?;
    let mut data: Arc<[u8]> =
        std::iter::repeat_n(0, header.total_len - header.header_len).collect();
    let buf = Arc::get_mut(&mut data).expect("not shared while filled");
    let got = read_full(&mut reader, buf).map_err(&io_err)?;
    if got < buf.len() {
        return Err(truncated(file, header.total_len, header.header_len + got));
    }
    // Count the rest without storing it, still bounded by `limit`.
    let rest = io::copy(&mut reader.take(limit as u64), &mut io::sink()).map_err(&io_err)?;
    if rest > 0 {
        return Err(DataError::TrailingBytes {
            file: file.to_owned(),
            expected: header.total_len,
            found: header.total_len.saturating_add(rest as usize),
        });
    }
    Ok(IdxArray {
        dims: header.dims,
        data,
    })
}

/// Reads into `buf` until it is full or the stream ends; the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Checks that `dims` and `data` can be written as an IDX file.
fn check_writable(dims: &[usize], data: &[u8], file: &str) -> Result<(), DataError> {
    if !(1..=MAX_DIMS).contains(&dims.len()) {
        return Err(bad_rank(file, dims.len(), "1 to 4"));
    }
    if dims.iter().any(|&d| u32::try_from(d).is_err()) {
        return Err(DataError::DimensionOverflow {
            file: file.to_owned(),
            dims: dims.to_vec(),
        });
    }
    let expected = checked_product(dims).ok_or_else(|| DataError::DimensionOverflow {
        file: file.to_owned(),
        dims: dims.to_vec(),
    })?;
    check_len(file, expected, data.len())
}

/// Encodes an unsigned-byte IDX file (uncompressed).
///
/// # Panics
///
/// If `dims` does not have 1 to 4 entries, a dimension exceeds `u32::MAX`,
/// or `data.len()` is not the product of `dims`: those are bugs in the
/// caller. Use [`write_idx_file`] to get an error instead.
pub fn write_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    if let Err(e) = check_writable(dims, data, IN_MEMORY) {
        panic!("write_idx: {e}");
    }
    let mut out = Vec::with_capacity(4 + 4 * dims.len() + data.len());
    out.extend_from_slice(&[0, 0, UBYTE, dims.len() as u8]);
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// Gzip-compresses `bytes` (default compression level).
pub fn gzip_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::default());
    // Writing into a Vec never fails, so these results carry no information.
    encoder
        .write_all(bytes)
        .expect("writing gzip into a Vec cannot fail");
    encoder
        .finish()
        .expect("finishing gzip into a Vec cannot fail")
}

/// Encodes a gzipped unsigned-byte IDX file; panics like [`write_idx`].
pub fn write_idx_gz(dims: &[usize], data: &[u8]) -> Vec<u8> {
    gzip_bytes(&write_idx(dims, data))
}

/// Writes an IDX file to `path`, gzipped if the name ends in `.gz`.
///
/// Unlike [`write_idx`] this reports invalid `dims`/`data` as an error.
pub fn write_idx_file(path: &Path, dims: &[usize], data: &[u8]) -> Result<(), DataError> {
    check_writable(dims, data, &path.display().to_string())?;
    let gzipped = path.extension().is_some_and(|ext| ext == "gz");
    let bytes = if gzipped {
        write_idx_gz(dims, data)
    } else {
        write_idx(dims, data)
    };
    std::fs::write(path, bytes).map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn sample() -> (Vec<usize>, Vec<u8>) {
        (vec![3, 2, 2], (0u8..12).collect())
    }

    #[test]
    fn header_layout_is_big_endian() {
        let bytes = write_idx(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        assert_eq!(
            bytes,
            [0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6]
        );
    }

    #[test]
    fn raw_round_trip() {
        let (dims, data) = sample();
        let parsed = parse_idx(&write_idx(&dims, &data)).unwrap();
        assert_eq!(parsed.dims, dims);
        assert_eq!(*parsed.data, *data);
        assert_eq!(parsed.count(), 3);
        let labels = parse_idx(&write_idx(&[4], &[9, 8, 7, 6])).unwrap();
        assert_eq!(labels.dims, vec![4]);
        assert_eq!(*labels.data, [9, 8, 7, 6]);
    }

    #[test]
    fn gzip_round_trip_in_memory_and_on_disk() {
        let (dims, data) = sample();
        let gz = write_idx_gz(&dims, &data);
        assert_eq!(&gz[..2], &GZIP_MAGIC);
        let parsed = decode_named(&gz, "x.gz", MAX_IDX_BYTES).unwrap();
        assert_eq!((parsed.dims, &*parsed.data), (dims.clone(), &data[..]));

        let dir = tempfile::tempdir().unwrap();
        for name in ["a-idx3-ubyte", "a-idx3-ubyte.gz"] {
            let path = dir.path().join(name);
            write_idx_file(&path, &dims, &data).unwrap();
            let on_disk = std::fs::read(&path).unwrap();
            assert_eq!(is_gzip(&on_disk), name.ends_with(".gz"));
            let parsed = read_idx_file(&path).unwrap();
            assert_eq!((parsed.dims, &*parsed.data), (dims.clone(), &data[..]));
        }
    }

    #[test]
    fn bad_magic_is_rejected_with_found_value() {
        let mut bytes = write_idx(&[1], &[0]);
        bytes[0] = 0x12;
        match parse_idx(&bytes) {
            Err(DataError::BadMagic { found, .. }) => assert_eq!(found, 0x1200_0801),
            other => panic!("expected BadMagic, got {other:?}"),
        }
    }

    #[test]
    fn errors_from_files_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken-idx1-ubyte");
        std::fs::write(&path, [0xAB, 0, 8, 1, 0, 0, 0, 0]).unwrap();
        let message = read_idx_file(&path).unwrap_err().to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("0xab000801"), "{message}");

        let missing = dir.path().join("nope");
        let err = read_idx_file(&missing).unwrap_err();
        assert!(matches!(err, DataError::Io { .. }));
        assert!(err.to_string().contains(&missing.display().to_string()));
    }

    #[test]
    fn wrong_type_code_is_rejected() {
        let mut bytes = write_idx(&[1], &[0]);
        bytes[2] = 0x0D;
        let err = parse_idx(&bytes).unwrap_err();
        assert!(matches!(err, DataError::UnsupportedType { code: 0x0D, .. }));
        assert!(err.to_string().contains("32-bit float"), "{err}");
    }

    #[test]
    fn dimension_count_outside_one_to_four_is_rejected() {
        for ndims in [0u8, 5] {
            let bytes = [0, 0, 8, ndims, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1];
            let err = parse_idx(&bytes).unwrap_err();
            assert!(
                matches!(err, DataError::BadRank { found, .. } if found == usize::from(ndims)),
                "{err:?}"
            );
        }
    }

    #[test]
    fn truncated_payload_and_header_are_rejected() {
        let mut bytes = write_idx(&[2, 3], &[0; 6]);
        bytes.pop();
        assert!(matches!(
            parse_idx(&bytes),
            Err(DataError::Truncated {
                expected: 18,
                found: 17,
                ..
            })
        ));
        assert!(matches!(
            parse_idx(&[0, 0, 8, 3, 0, 0]),
            Err(DataError::Truncated {
                expected: 16,
                found: 6,
                ..
            })
        ));
        assert!(matches!(
            parse_idx(&[]),
            Err(DataError::Truncated {
                expected: 4,
                found: 0,
                ..
            })
        ));
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = write_idx(&[2], &[1, 2]);
        bytes.extend_from_slice(&[0, 0, 0]);
        let err = parse_idx(&bytes).unwrap_err();
        assert!(matches!(
            err,
            DataError::TrailingBytes {
                expected: 10,
                found: 13,
                ..
            }
        ));
        assert!(err.to_string().contains("3 trailing byte(s)"), "{err}");
    }

    /// The streamed readers (files raw and gzipped, gzip in memory) report a short or a long
    /// payload as the in-memory parser does.
    #[test]
    fn streamed_payloads_short_or_long_are_rejected_like_in_memory_ones() {
        let dir = tempfile::tempdir().unwrap();
        let good = write_idx(&[2, 3], &[7; 6]);
        let (mut short, mut long) = (good.clone(), good.clone());
        short.pop();
        long.extend_from_slice(&[0, 0, 0]);
        let check = |bytes: &[u8], expect: &dyn Fn(&DataError) -> bool| {
            let raw = dir.path().join("raw-idx");
            std::fs::write(&raw, bytes).unwrap();
            let gz = dir.path().join("raw-idx.gz");
            std::fs::write(&gz, gzip_bytes(bytes)).unwrap();
            for err in [
                read_idx_file(&raw).unwrap_err(),
                read_idx_file(&gz).unwrap_err(),
                decode_named(&gzip_bytes(bytes), "m", MAX_IDX_BYTES).unwrap_err(),
            ] {
                assert!(expect(&err), "{err:?}");
            }
        };
        check(&short, &|e| {
            matches!(
                e,
                DataError::Truncated {
                    expected: 18,
                    found: 17,
                    ..
                }
            )
        });
        check(&long, &|e| {
            matches!(
                e,
                DataError::TrailingBytes {
                    expected: 18,
                    found: 21,
                    ..
                }
            )
        });
        let path = dir.path().join("good-idx.gz");
        std::fs::write(&path, gzip_bytes(&good)).unwrap();
        let parsed = read_idx_file(&path).unwrap();
        assert_eq!((parsed.dims, &*parsed.data), (vec![2, 3], &[7u8; 6][..]));
    }

    /// A 16-byte file claiming 4e9 × 28 × 28 images: 3.1 TB would be needed.
    fn huge_header() -> Vec<u8> {
        let mut bytes = vec![0, 0, 8, 3];
        for d in [4_000_000_000u32, 28, 28] {
            bytes.extend_from_slice(&d.to_be_bytes());
        }
        bytes
    }

    #[test]
    fn huge_dimension_header_is_rejected_without_allocating() {
        let start = Instant::now();
        let err = parse_idx(&huge_header()).unwrap_err();
        assert!(start.elapsed() < Duration::from_millis(100));
        match err {
            DataError::Truncated {
                expected, found, ..
            } => {
                assert_eq!(expected, 4_000_000_000 * 784 + 16);
                assert_eq!(found, 16);
            }
            other => panic!("expected Truncated, got {other:?}"),
        }
    }

    #[test]
    fn huge_dimension_header_in_gzip_is_refused_before_decompressing() {
        let start = Instant::now();
        let err = decode_named(&gzip_bytes(&huge_header()), "h.gz", MAX_IDX_BYTES).unwrap_err();
        assert!(start.elapsed() < Duration::from_millis(100));
        assert!(
            matches!(err, DataError::TooLarge { bytes, .. } if bytes == 4_000_000_000 * 784 + 16)
        );
    }

    #[test]
    fn overflowing_dimension_product_is_rejected() {
        let mut bytes = vec![0, 0, 8, 4];
        for _ in 0..4 {
            bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        }
        assert!(matches!(
            parse_idx(&bytes),
            Err(DataError::DimensionOverflow { .. })
        ));
    }

    #[test]
    fn gzip_bomb_stops_at_the_claimed_length() {
        // A 10-byte array followed by 20 MB of zeros compresses to ~20 kB.
        let mut raw = write_idx(&[10], &[7; 10]);
        raw.resize(raw.len() + 20_000_000, 0);
        let gz = gzip_bytes(&raw);
        let err = decode_named(&gz, "bomb.gz", MAX_IDX_BYTES).unwrap_err();
        assert!(matches!(
            err,
            DataError::TrailingBytes { expected: 18, found, .. } if found == raw.len()
        ));
    }

    #[test]
    fn gzip_over_limit_is_refused() {
        let gz = write_idx_gz(&[1000], &[0; 1000]);
        let err = decode_named(&gz, "big.gz", 100).unwrap_err();
        assert!(matches!(
            err,
            DataError::TooLarge {
                bytes: 1008,
                limit: 100,
                ..
            }
        ));
        assert!(decode_named(&gz, "big.gz", 1008).is_ok());
    }

    #[test]
    fn corrupt_gzip_is_a_gzip_error() {
        let gz = write_idx_gz(&[500], &(0..500).map(|i| (i * 7) as u8).collect::<Vec<_>>());
        let cut = &gz[..gz.len() / 2];
        let err = decode_named(cut, "cut.gz", MAX_IDX_BYTES).unwrap_err();
        assert!(matches!(err, DataError::Gzip { .. }), "{err:?}");
        assert!(err.to_string().starts_with("cut.gz: gzip decode error"));
    }

    #[test]
    fn write_idx_file_reports_inconsistent_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad");
        let err = write_idx_file(&path, &[2, 2], &[0; 3]).unwrap_err();
        assert!(matches!(
            err,
            DataError::Truncated {
                expected: 4,
                found: 3,
                ..
            }
        ));
        let err = write_idx_file(&path, &[1, 1, 1, 1, 1], &[0]).unwrap_err();
        assert!(matches!(err, DataError::BadRank { found: 5, .. }));
        assert!(!path.exists());
    }
}

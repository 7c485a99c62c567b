//! `ladder data fetch NAME`: the papers' datasets from their official locations into a cache
//! directory, every file checked against its published SHA-256.
//!
//! A file is downloaded to `FILE.part` beside its final name, resumed from there with an HTTP
//! range request when a transfer broke off, checked, and only then renamed into place, so a
//! half-downloaded or corrupted file is never taken for data. Archives (CIFAR-10) are unpacked
//! into a temporary directory that is renamed into place whole. `--data mnist` (or any
//! fetched name) then reads the cached copy.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{LadderError, Result};

/// One file of a dataset: its name, where it is published, and its SHA-256.
#[derive(Debug, Clone)]
pub struct RemoteFile {
    pub name: String,
    pub url: String,
    pub sha256: String,
}

/// A dataset the cache can hold.
#[derive(Debug, Clone)]
pub struct RemoteDataset {
    pub name: String,
    pub about: String,
    pub files: Vec<RemoteFile>,
    /// The directory inside a fetched `.tar.gz` that `--data` reads (`None`: the files
    /// themselves, an IDX directory).
    pub unpacked: Option<String>,
}

fn file(name: &str, base: &str, sha256: &str) -> RemoteFile {
    RemoteFile {
        name: name.into(),
        url: format!("{base}{name}"),
        sha256: sha256.into(),
    }
}

/// The datasets of the papers, with the SHA-256 sums their distributors' files have (the same
/// sums torchvision, TensorFlow Datasets and others check).
pub fn datasets() -> Vec<RemoteDataset> {
    let mnist = "https://ossci-datasets.s3.amazonaws.com/mnist/";
    let fashion =
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/";
    let idx = |base: &str, sums: [&str; 4]| -> Vec<RemoteFile> {
        [
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
        ]
        .iter()
        .zip(sums)
        .map(|(n, s)| file(n, base, s))
        .collect()
    };
    vec![
        RemoteDataset {
            name: "mnist".into(),
            about: "MNIST: 60,000 + 10,000 handwritten digits, 28×28 (LeCun et al.)".into(),
            files: idx(
                mnist,
                [
                    "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                    "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                ],
            ),
            unpacked: None,
        },
        RemoteDataset {
            name: "fashion-mnist".into(),
            about: "Fashion-MNIST: 60,000 + 10,000 clothing images, 28×28 (Xiao et al.)".into(),
            files: idx(
                fashion,
                [
                    "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                    "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                    "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                    "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                ],
            ),
            unpacked: None,
        },
        RemoteDataset {
            name: "cifar10".into(),
            about: "CIFAR-10: 50,000 + 10,000 colour images, 32×32, binary version (Krizhevsky)"
                .into(),
            files: vec![file(
                "cifar-10-binary.tar.gz",
                "https://www.cs.toronto.edu/~kriz/",
                "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
            )],
            unpacked: Some("cifar-10-batches-bin".into()),
        },
        RemoteDataset {
            name: "cifar100".into(),
            about: "CIFAR-100: 50,000 + 10,000 colour images, 32×32, 100 fine classes, binary \
                    version (Krizhevsky)"
                .into(),
            files: vec![file(
                "cifar-100-binary.tar.gz",
                "https://www.cs.toronto.edu/~kriz/",
                "58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec",
            )],
            unpacked: Some("cifar-100-binary".into()),
        },
    ]
}

/// The dataset called `name`; an error listing the known ones otherwise.
pub fn dataset(name: &str) -> Result<RemoteDataset> {
    let all = datasets();
    let names: Vec<String> = all.iter().map(|d| d.name.clone()).collect();
    all.into_iter().find(|d| d.name == name).ok_or_else(|| {
        LadderError::Setting(format!(
            "unknown dataset '{name}'; ladder data fetch knows {}",
            names.join(", ")
        ))
    })
}

/// The cache: `dir` if given, else `$XDG_CACHE_HOME/ladder`, else `$HOME/.cache/ladder`.
pub fn cache_dir(dir: Option<&Path>) -> Result<PathBuf> {
    if let Some(d) = dir {
        return Ok(d.to_path_buf());
    }
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("XDG_CACHE_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".cache")))
        .map(|d| d.join("ladder"))
        .ok_or_else(|| {
            LadderError::Setting(
                "no cache directory: set XDG_CACHE_HOME or HOME, or pass --data-dir".into(),
            )
        })
}

/// Where `--data` reads a fetched dataset: its directory in the cache (the unpacked one for
/// archives).
pub fn data_path(set: &RemoteDataset, cache: &Path) -> PathBuf {
    let dir = cache.join(&set.name);
    match &set.unpacked {
        Some(inner) => dir.join(inner),
        None => dir,
    }
}

/// The SHA-256 of the file at `path`, in hex.
pub fn sha256_of(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| LadderError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| LadderError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// Progress of one download: bytes so far, and the total when the server says it.
pub type OnProgress<'a> = dyn FnMut(&str, u64, Option<u64>) + 'a;

fn fetch_error(url: &str, reason: String) -> LadderError {
    LadderError::Setting(format!("cannot download {url}: {reason}"))
}

/// Downloads `remote` to `dest`: resumes `dest.part` if a transfer broke off, checks the
/// SHA-256, then renames it into place. A file already at `dest` is checked and kept (a
/// corrupted one is an error unless `force`, which downloads it again).
pub fn download(
    remote: &RemoteFile,
    dest: &Path,
    force: bool,
    progress: &mut OnProgress<'_>,
) -> Result<()> {
    if dest.exists() {
        let got = sha256_of(dest)?;
        if got == remote.sha256 {
            return Ok(());
        }
        if !force {
            return Err(LadderError::Format {
                path: dest.into(),
                reason: format!(
                    "is corrupted: sha256 {got}, expected {}; pass --force to download it again",
                    remote.sha256
                ),
            });
        }
        std::fs::remove_file(dest).map_err(|e| LadderError::io(dest, e))?;
    }
    let part = dest.with_file_name(format!(
        "{}.part",
        dest.file_name().unwrap_or_default().to_string_lossy()
    ));
    transfer(&remote.url, &part, progress)?;
    let got = sha256_of(&part)?;
    if got != remote.sha256 {
        let _ = std::fs::remove_file(&part);
        return Err(LadderError::Format {
            path: dest.into(),
            reason: format!(
                "the download from {} has sha256 {got}, not the published {}; it was removed",
                remote.url, remote.sha256
            ),
        });
    }
    std::fs::rename(&part, dest).map_err(|e| LadderError::io(dest, e))
}

/// Appends the rest of `url` to `part` (all of it when `part` is absent or the server ignores
/// the range); an error when the transfer ends before the length the server announced, with
/// what arrived kept for the next attempt to resume.
fn transfer(url: &str, part: &Path, progress: &mut OnProgress<'_>) -> Result<()> {
    let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let mut request = ureq::get(url);
    if have > 0 {
        request = request.set("Range", &format!("bytes={have}-"));
    }
    let response = match request.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(416, _)) if have > 0 => return Ok(()),
        Err(ureq::Error::Status(code, r)) => {
            return Err(fetch_error(
                url,
                format!("the server answered {code} {}", r.status_text()),
            ));
        }
        Err(e) => return Err(fetch_error(url, e.to_string())),
    };
    let resumed = response.status() == 206;
    let length: Option<u64> = response
        .header("Content-Length")
        .and_then(|v| v.parse().ok());
    let start = if resumed { have } else { 0 };
    let total = length.map(|l| l + start);
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(resumed)
        .truncate(!resumed)
        .open(part)
        .map_err(|e| LadderError::io(part, e))?;
    let mut body = response.into_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut done = start;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            // A broken connection: what arrived is kept, and the length check below says so.
            Err(_) => break,
        };
        out.write_all(&buf[..n])
            .map_err(|e| LadderError::io(part, e))?;
        done += n as u64;
        progress(url, done, total);
    }
    out.sync_all().map_err(|e| LadderError::io(part, e))?;
    if let Some(t) = total
        && done < t
    {
        return Err(fetch_error(
            url,
            format!(
                "the transfer ended after {done} of {t} bytes; run the command again to resume \
                 from {}",
                part.display()
            ),
        ));
    }
    Ok(())
}

/// Fetches every file of `set` from its URL (or from `mirror`/FILE) into `cache`/NAME, unpacks
/// an archive, and returns the directory `--data` reads.
pub fn fetch(
    set: &RemoteDataset,
    cache: &Path,
    mirror: Option<&str>,
    force: bool,
    progress: &mut OnProgress<'_>,
) -> Result<PathBuf> {
    let dir = cache.join(&set.name);
    std::fs::create_dir_all(&dir).map_err(|e| LadderError::io(&dir, e))?;
    for f in &set.files {
        let remote = match mirror {
            Some(m) => RemoteFile {
                url: format!("{}/{}", m.trim_end_matches('/'), f.name),
                ..f.clone()
            },
            None => f.clone(),
        };
        download(&remote, &dir.join(&f.name), force, progress)?;
    }
    let target = data_path(set, cache);
    if let Some(inner) = &set.unpacked
        && (force || !target.exists())
    {
        unpack(&dir.join(&set.files[0].name), &dir, inner)?;
    }
    Ok(target)
}

/// Unpacks the `.tar.gz` at `archive` into a temporary directory beside `inner` and renames
/// its `inner` directory into `dir`, so a broken unpacking leaves nothing that looks whole.
fn unpack(archive: &Path, dir: &Path, inner: &str) -> Result<()> {
    let tmp = dir.join(".unpacking");
    let _ = std::fs::remove_dir_all(&tmp);
    let f = std::fs::File::open(archive).map_err(|e| LadderError::io(archive, e))?;
    tar::Archive::new(flate2::read::GzDecoder::new(f))
        .unpack(&tmp)
        .map_err(|e| LadderError::Format {
            path: archive.into(),
            reason: format!("cannot unpack: {e}"),
        })?;
    let found = tmp.join(inner);
    if !found.is_dir() {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(LadderError::Format {
            path: archive.into(),
            reason: format!("holds no {inner}/ directory"),
        });
    }
    let target = dir.join(inner);
    let _ = std::fs::remove_dir_all(&target);
    std::fs::rename(&found, &target).map_err(|e| LadderError::io(&target, e))?;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

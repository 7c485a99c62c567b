//! `data fetch` against a local HTTP server on the loopback address (never the network): a
//! whole download, a transfer cut short and resumed with a range request, a wrong checksum, a
//! 404, a corrupted cache, and an archive unpacked into place.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::{assert_fails, ladder};
use ladder::data::fetch::{RemoteDataset, RemoteFile, data_path, fetch, sha256_of};

/// A server of `files` at `/good/NAME` (with range requests) and `/cut/NAME` (announces the
/// whole length, sends half, hangs up); anything else is 404. Returns its base URL and the
/// Range headers it received.
fn serve(files: Vec<(String, Vec<u8>)>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let seen = ranges.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            let mut from = 0usize;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    seen.lock().unwrap().push(v.trim().to_string());
                    from = v.trim().trim_end_matches('-').parse().unwrap();
                }
            }
            let (kind, name) = path
                .trim_start_matches('/')
                .split_once('/')
                .unwrap_or(("", ""));
            let Some((_, body)) = files.iter().find(|(n, _)| n == name) else {
                let _ = stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                continue;
            };
            let reply = match kind {
                "good" if from > 0 => {
                    let rest = &body[from..];
                    let head = format!(
                        "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {from}-{}/{}\r\nConnection: close\r\n\r\n",
                        rest.len(),
                        body.len() - 1,
                        body.len()
                    );
                    [head.as_bytes(), rest].concat()
                }
                "good" => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    [head.as_bytes(), body].concat()
                }
                _ => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    [head.as_bytes(), &body[..body.len() / 2]].concat()
                }
            };
            let _ = stream.write_all(&reply);
        }
    });
    (base, ranges)
}

fn sha(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x");
    std::fs::write(&p, bytes).unwrap();
    sha256_of(&p).unwrap()
}

fn dataset(base: &str, kind: &str, name: &str, sha256: String) -> RemoteDataset {
    RemoteDataset {
        name: "fixture".into(),
        about: "test files".into(),
        files: vec![RemoteFile {
            name: name.into(),
            url: format!("{base}/{kind}/{name}"),
            sha256,
        }],
        unpacked: None,
    }
}

fn quiet(_: &str, _: u64, _: Option<u64>) {}

#[test]
fn downloads_are_checked_resumed_and_placed_whole() {
    let body: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (base, ranges) = serve(vec![("a.bin".into(), body.clone())]);
    let cache = tempfile::tempdir().unwrap();
    let target = cache.path().join("fixture/a.bin");
    let part = cache.path().join("fixture/a.bin.part");
    // Cut short: an error that says so, nothing at the final name, the first half kept.
    let cut = dataset(&base, "cut", "a.bin", sha(&body));
    let err = fetch(&cut, cache.path(), None, false, &mut quiet)
        .unwrap_err()
        .to_string();
    assert!(err.contains("ended after 100000 of 200000 bytes"), "{err}");
    assert!(!target.exists());
    assert_eq!(std::fs::metadata(&part).unwrap().len(), 100_000);
    // Again, from a working server: resumed from byte 100,000, checked, renamed into place.
    let mirror = format!("{base}/good");
    let dir = fetch(&cut, cache.path(), Some(&mirror), false, &mut quiet).unwrap();
    assert_eq!(dir, cache.path().join("fixture"));
    assert_eq!(std::fs::read(&target).unwrap(), body);
    assert!(!part.exists());
    assert_eq!(*ranges.lock().unwrap(), vec!["100000-".to_string()]);
    // A cached file that checks is kept without asking the server.
    let gone = dataset("http://127.0.0.1:9", "good", "a.bin", sha(&body));
    fetch(&gone, cache.path(), None, false, &mut quiet).unwrap();
    // A corrupted cache is an error, and --force downloads the file again.
    std::fs::write(&target, b"garbage").unwrap();
    let good = dataset(&base, "good", "a.bin", sha(&body));
    let err = fetch(&good, cache.path(), None, false, &mut quiet)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("is corrupted") && err.contains("--force"),
        "{err}"
    );
    fetch(&good, cache.path(), None, true, &mut quiet).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), body);
}

#[test]
fn a_wrong_checksum_or_a_missing_file_leaves_nothing_behind() {
    let (base, _) = serve(vec![("a.bin".into(), vec![1, 2, 3])]);
    let cache = tempfile::tempdir().unwrap();
    let wrong = dataset(&base, "good", "a.bin", "00".repeat(32));
    let err = fetch(&wrong, cache.path(), None, false, &mut quiet)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not the published") && err.contains(&"00".repeat(32)),
        "{err}"
    );
    let dir = cache.path().join("fixture");
    assert!(!dir.join("a.bin").exists() && !dir.join("a.bin.part").exists());
    let missing = dataset(&base, "good", "b.bin", "00".repeat(32));
    let err = fetch(&missing, cache.path(), None, false, &mut quiet)
        .unwrap_err()
        .to_string();
    assert!(err.contains("404"), "{err}");
    assert!(!dir.join("b.bin").exists());
}

#[test]
fn an_archive_is_unpacked_into_place() {
    let mut tarball = Vec::new();
    {
        let gz = flate2::write::GzEncoder::new(&mut tarball, flate2::Compression::fast());
        let mut t = tar::Builder::new(gz);
        let data = b"0123456789";
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        t.append_data(&mut header, "batches/x.bin", &data[..])
            .unwrap();
        t.into_inner().unwrap().finish().unwrap();
    }
    let (base, _) = serve(vec![("set.tar.gz".into(), tarball.clone())]);
    let cache = tempfile::tempdir().unwrap();
    let mut set = dataset(&base, "good", "set.tar.gz", sha(&tarball));
    set.unpacked = Some("batches".into());
    let dir = fetch(&set, cache.path(), None, false, &mut quiet).unwrap();
    assert_eq!(dir, data_path(&set, cache.path()));
    assert_eq!(std::fs::read(dir.join("x.bin")).unwrap(), b"0123456789");
    assert!(!cache.path().join("fixture/.unpacking").exists());
    set.unpacked = Some("elsewhere".into());
    let err = fetch(&set, cache.path(), None, false, &mut quiet)
        .unwrap_err()
        .to_string();
    assert!(err.contains("holds no elsewhere/"), "{err}");
}

#[test]
fn unknown_names_and_unfetched_data_are_clear_errors() {
    let cache = tempfile::tempdir().unwrap();
    let c = cache.path().to_str().unwrap();
    assert_fails(
        &ladder(&["data", "fetch", "imagenet", "--data-dir", c]),
        "unknown dataset 'imagenet'",
    );
    let out = cache.path().join("run");
    let o = ladder(&[
        "train",
        "--data",
        "mnist",
        "--data-dir",
        c,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_fails(&o, "ladder data fetch mnist");
    assert!(!Path::new(&out).exists());
    let o = ladder(&["data", "list", "--data-dir", c]);
    assert!(o.status.success());
    let listed = String::from_utf8_lossy(&o.stdout);
    assert!(
        listed.contains("mnist") && listed.contains("not fetched"),
        "{listed}"
    );
}

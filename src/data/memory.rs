//! The memory a data set may take: a set that will not fit is refused before it is read, with
//! the size it needs, instead of the process being killed part-way (the kernel's OOM killer
//! says nothing a user can act on). The budget is `LADDER_MEMORY_LIMIT` (bytes, or with a K, M
//! or G suffix, powers of 1024) or else the machine's available memory (`MemAvailable`).

use super::DataError;

/// The environment variable that sets the budget.
pub const LIMIT_VAR: &str = "LADDER_MEMORY_LIMIT";

/// How many bytes a data set may take, and where that figure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub bytes: u64,
    pub source: &'static str,
}

/// `4096`, `512K`, `300M`, `2G` (powers of 1024), case ignored.
fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_uppercase()),
        _ => (t, 'B'),
    };
    let shift = match unit {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        'T' => 40,
        _ => return None,
    };
    let n: u64 = digits.trim().parse().ok()?;
    n.checked_mul(1 << shift)
}

/// `MemAvailable` of /proc/meminfo, in bytes.
fn available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The budget: [`LIMIT_VAR`] when set (a malformed value is an error), else the available
/// memory; `None` where neither is known (no limit is applied).
pub fn budget() -> Result<Option<Budget>, DataError> {
    match std::env::var(LIMIT_VAR) {
        Ok(v) => parse_size(&v)
            .map(|bytes| {
                Some(Budget {
                    bytes,
                    source: LIMIT_VAR,
                })
            })
            .ok_or_else(|| {
                DataError::Source(format!(
                    "{LIMIT_VAR}={v:?} is not a size (bytes, or a number with K, M or G)"
                ))
            }),
        Err(_) => Ok(available().map(|bytes| Budget {
            bytes,
            source: "the machine's available memory (MemAvailable)",
        })),
    }
}

/// `bytes` in the largest binary unit that keeps it above 1.
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1024 => format!("{bytes} bytes"),
        1024..1_048_576 => format!("{:.1} KiB", b / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.1} MiB", b / 1_048_576.0),
        _ => format!("{:.2} GiB", b / 1_073_741_824.0),
    }
}

/// Refuses `what` (a file, or a step such as a preprocessing copy) when it needs more than the
/// budget.
pub fn check(what: &str, needed: u64) -> Result<(), DataError> {
    match budget()? {
        Some(b) if needed > b.bytes => Err(DataError::OverMemory {
            what: what.to_owned(),
            needed: human(needed),
            limit: human(b.bytes),
            source_of_limit: b.source,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_powers_of_1024() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("512k"), Some(512 << 10));
        assert_eq!(parse_size(" 300M "), Some(300 << 20));
        assert_eq!(parse_size("2G"), Some(2 << 30));
        for bad in ["", "G", "1.5G", "-3", "12Q"] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
        assert_eq!(human(3 << 20), "3.0 MiB");
        assert_eq!(human(1536), "1.5 KiB");
    }
}

//! Reading the files operators hand us (policies, events, state files,
//! traces) with a size limit, so a wrong path (`/dev/zero`, a disk image)
//! fails fast with a clear error instead of filling memory (issue 25.8:
//! `--policy /dev/zero` grew to 4 GB of RSS).

use std::io::Read;
use std::path::Path;

/// The largest policy file read: the largest shipped one is under 10 KiB.
pub const POLICY_MAX_BYTES: u64 = 1 << 20;
/// The largest event read: Lambda's synchronous invocation payload limit (6 MB).
pub const EVENT_MAX_BYTES: u64 = 6 * 1024 * 1024;
/// The largest state file read (a group with its metric history).
pub const STATE_MAX_BYTES: u64 = 64 << 20;
/// The largest trace read: a year of one-minute samples is about 16 MB.
pub const TRACE_MAX_BYTES: u64 = 256 << 20;

/// The file's text, refused when it is longer than `max_bytes` or not UTF-8.
pub fn read_text(path: &Path, max_bytes: u64) -> std::io::Result<String> {
    let file = std::fs::File::open(path)?;
    let mut text = String::new();
    file.take(max_bytes + 1).read_to_string(&mut text)?;
    if text.len() as u64 > max_bytes {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {} (the most read from such a file)", bytes(max_bytes)),
        ));
    }
    Ok(text)
}

fn bytes(n: u64) -> String {
    if n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_file_is_refused_at_the_limit() {
        let error = read_text(Path::new("/dev/zero"), 1 << 20).expect_err("refused");
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(error.to_string(), "larger than 1 MiB (the most read from such a file)");
    }

    #[test]
    fn a_file_at_the_limit_is_read() {
        let path = std::env::temp_dir().join(format!("input-test-{}", std::process::id()));
        std::fs::write(&path, "x".repeat(1024)).expect("write");
        assert_eq!(read_text(&path, 1024).expect("read").len(), 1024);
        assert!(read_text(&path, 1023).is_err());
        let _ = std::fs::remove_file(&path);
    }
}

//! Opening the sled database behind a [`super::Buffer`], and deciding what
//! an open failure means.
//!
//! Three kinds of failure, three answers:
//! * **unusable** — sled reports corruption, the path is not a directory,
//!   its files cannot be parsed or read: the directory is moved aside
//!   (`<path>.corrupt-<unix>`) and a fresh buffer is created, so probing
//!   goes on. Nothing is deleted: an operator can inspect what was moved.
//! * **locked** — another process (a running agent) holds the database:
//!   never moved aside; the caller gets [`BufferError::Locked`].
//! * **transient** — anything else, above all a full disk (ENOSPC): never
//!   moved aside (the buffer is fine, the disk is not); the caller gets
//!   [`BufferError::Storage`] and may retry.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::{now_unix_micros, BufferError};

/// sled's page cache; its default is 1 GiB. Small on purpose: the agent
/// reads the buffer sequentially, once.
const CACHE_CAPACITY: u64 = 4 * 1024 * 1024;

/// The open sled database and its two trees. Clones share the database;
/// sled's file lock is released only when the last clone is dropped.
#[derive(Clone)]
pub(super) struct Handles {
    pub db: sled::Db,
    pub results: sled::Tree,
    pub meta: sled::Tree,
}

/// What an open failure means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Disposition {
    /// The directory's content is unusable: move it aside.
    Unusable,
    /// Another process holds the database lock.
    Locked,
    /// Disk full or another I/O failure that may pass: retry later.
    Transient,
}

/// Classifies a sled error returned by an open.
pub(super) fn classify(e: &sled::Error) -> Disposition {
    match e {
        sled::Error::Corruption { .. }
        | sled::Error::Unsupported(_)
        | sled::Error::ReportableBug(_) => Disposition::Unusable,
        sled::Error::Io(io) => match io.kind() {
            ErrorKind::NotADirectory
            | ErrorKind::IsADirectory
            | ErrorKind::InvalidData
            | ErrorKind::UnexpectedEof
            | ErrorKind::PermissionDenied => Disposition::Unusable,
            // sled wraps a failed `flock` in an `Other` error with this text.
            ErrorKind::Other if io.to_string().contains("could not acquire lock") => {
                Disposition::Locked
            }
            _ => Disposition::Transient,
        },
        sled::Error::CollectionNotFound(_) => Disposition::Transient,
    }
}

/// Opens sled at `path` and its trees. No recovery, no moving aside.
pub(super) fn handles(path: &Path) -> Result<Handles, sled::Error> {
    // The one place this crate opens sled (clippy.toml disallows it elsewhere).
    #[allow(clippy::disallowed_methods)]
    let db = sled::Config::new()
        .path(path)
        .cache_capacity(CACHE_CAPACITY)
        .flush_every_ms(Some(1000))
        .open()?;
    let results = db.open_tree("results")?;
    let meta = db.open_tree("meta")?;
    Ok(Handles { db, results, meta })
}

/// Maps an open failure to the caller's error.
pub(super) fn open_error(path: &Path, source: sled::Error) -> BufferError {
    match classify(&source) {
        Disposition::Locked => BufferError::Locked {
            path: path.to_path_buf(),
        },
        _ => BufferError::Storage {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// Renames an unusable buffer out of the way; returns the new name.
pub(super) fn move_aside(path: &Path, reason: &str) -> Result<PathBuf, BufferError> {
    let aside = PathBuf::from(format!(
        "{}.corrupt-{}",
        path.display(),
        now_unix_micros() / 1_000_000
    ));
    std::fs::rename(path, &aside).map_err(|source| BufferError::MoveAside {
        path: path.to_path_buf(),
        reason: reason.to_string(),
        source,
    })?;
    Ok(aside)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(kind: ErrorKind, text: &str) -> sled::Error {
        sled::Error::Io(std::io::Error::new(kind, text.to_string()))
    }

    #[test]
    fn only_unusable_content_is_moved_aside() {
        assert_eq!(
            classify(&sled::Error::Corruption { at: None, bt: () }),
            Disposition::Unusable
        );
        assert_eq!(
            classify(&io(ErrorKind::NotADirectory, "x")),
            Disposition::Unusable
        );
        assert_eq!(
            classify(&io(ErrorKind::StorageFull, "No space left on device")),
            Disposition::Transient,
            "a full disk must never cost the buffer"
        );
        assert_eq!(
            classify(&io(
                ErrorKind::Other,
                "could not acquire lock on \"/x/db\": WouldBlock"
            )),
            Disposition::Locked,
            "a buffer held by a running agent must never be moved aside"
        );
        assert_eq!(
            classify(&io(ErrorKind::Other, "something else")),
            Disposition::Transient
        );
    }
}

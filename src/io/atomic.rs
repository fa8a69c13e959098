//! Atomic writes: a temporary file beside the target, renamed when complete.
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The folder of `path` and the prefix of the temporary names beside it (`.NAME.tmp`; the
/// writer's process id follows).
fn temporary_prefix(path: &Path) -> Result<(&Path, String)> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| Error::File { path: path.to_path_buf(), msg: "not a file path".into() })?.to_string_lossy();
    Ok((dir, format!(".{name}.tmp")))
}

/// The temporary name beside `path` that `write_atomically` writes first.
fn temporary(path: &Path) -> Result<PathBuf> {
    let (dir, prefix) = temporary_prefix(path)?;
    Ok(dir.join(format!("{prefix}{}", std::process::id())))
}

/// Removes temporary files of `path` left by writers that were killed (their process is gone).
fn remove_stale_temporaries(path: &Path) -> Result<()> {
    let (dir, prefix) = temporary_prefix(path)?;
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let writer = name.strip_prefix(&prefix).and_then(|pid| pid.parse::<u32>().ok());
        if writer.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// Checks, before hours of work, that `write_atomically(path, ..)` can succeed: `path` is a
/// regular file or absent, and its directory exists and takes a new file (one is created and
/// removed). Temporary files of killed earlier writers of `path` are removed on the way.
pub fn check_writable(path: &Path) -> Result<()> {
    let err = |msg: String| Error::File { path: path.to_path_buf(), msg };
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => return Err(err("is a directory; give a file name".into())),
        Ok(m) if !m.is_file() => return Err(err("is not a regular file (a pipe, socket or device)".into())),
        _ => {}
    }
    remove_stale_temporaries(path)?;
    let tmp = temporary(path)?;
    File::create(&tmp).map_err(|e| err(format!("cannot write here: {e}")))?;
    let _ = std::fs::remove_file(&tmp);
    Ok(())
}

/// A file written under a temporary name beside `path` and renamed to `path` by `commit`: until
/// then (an error, a panic, a kill) nothing appears under the final name, and dropping it
/// uncommitted removes the temporary.
pub struct AtomicFile {
    file: File,
    tmp: PathBuf,
    path: PathBuf,
}

impl AtomicFile {
    pub fn create(path: &Path) -> Result<Self> {
        let tmp = temporary(path)?;
        let file = File::create(&tmp).map_err(|e| Error::File { path: path.to_path_buf(), msg: format!("cannot write: {e}") })?;
        Ok(AtomicFile { file, tmp, path: path.to_path_buf() })
    }

    /// The temporary file, to write (and seek in).
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// An error about the final path.
    pub fn error(&self, what: impl std::fmt::Display) -> Error {
        Error::File { path: self.path.clone(), msg: format!("cannot write: {what}") }
    }

    /// Flush to disk and rename into place.
    pub fn commit(self) -> Result<()> {
        self.file.sync_all().and_then(|_| std::fs::rename(&self.tmp, &self.path)).map_err(|e| self.error(e))
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // After a commit the temporary is gone and this fails harmlessly.
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Write `bytes` to `path` through a temporary file in the same directory and a rename, so an
/// interrupted write never leaves a partial file under the final name.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.file().write_all(bytes).map_err(|e| file.error(e))?;
    file.commit()
}

/// Bytes free to this user on the file system holding `dir` (statvfs); None where it cannot be
/// asked.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes only into the zeroed struct it is given; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

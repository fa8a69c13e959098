//! Atomic writes: a temporary file beside the target, renamed when complete.
use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// The temporary name beside `path` that `write_atomically` writes first.
fn temporary(path: &Path) -> Result<std::path::PathBuf> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| Error::File { path: path.to_path_buf(), msg: "not a file path".into() })?.to_string_lossy();
    Ok(dir.join(format!(".{name}.tmp{}", std::process::id())))
}

/// Checks, before hours of work, that `write_atomically(path, ..)` can succeed: `path` is not a
/// directory and its directory exists and takes a new file (one is created and removed).
pub fn check_writable(path: &Path) -> Result<()> {
    let err = |msg: String| Error::File { path: path.to_path_buf(), msg };
    if path.is_dir() {
        return Err(err("is a directory; give a file name".into()));
    }
    let tmp = temporary(path)?;
    File::create(&tmp).map_err(|e| err(format!("cannot write here: {e}")))?;
    let _ = std::fs::remove_file(&tmp);
    Ok(())
}

/// Write `bytes` to `path` through a temporary file in the same directory and a rename, so an
/// interrupted write never leaves a partial file under the final name.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let err = |msg: String| Error::File { path: path.to_path_buf(), msg };
    let tmp = temporary(path)?;
    let result = File::create(&tmp).and_then(|mut f| f.write_all(bytes).and_then(|_| f.sync_all())).and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(format!("cannot write: {e}")));
    }
    Ok(())
}

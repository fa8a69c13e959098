//! `--check-weights`: every floating tensor of a weights file must be finite as it will be
//! stored. A NaN or Inf in a checkpoint (or a value beyond f16's 65504 run in f16) otherwise
//! surfaces only as black images hours later.
use crate::error::{Error, Result};
use crate::io::safetensors::SafetensorsFile;
use crate::tensor::{bytes_to_f32, f32_to_bytes, DType};

/// Ok when every float tensor of `file` is finite once stored as `storage` (None: as the file
/// stores it); else an error naming
/// the first bad tensor (sorted key order), how many NaN and Inf values it holds and where the
/// first one is.
pub fn check_finite(file: &SafetensorsFile, storage: Option<DType>) -> Result<()> {
    for key in file.keys() {
        let tensor = file.tensor(&key)?;
        if tensor.dtype == DType::U32 {
            continue;
        }
        // Round trip through the storage dtype: what the backend will hold.
        let storage = storage.unwrap_or(tensor.dtype);
        let values = bytes_to_f32(&f32_to_bytes(&tensor.to_f32(), storage), storage);
        let nan = values.iter().filter(|v| v.is_nan()).count();
        let inf = values.iter().filter(|v| v.is_infinite()).count();
        if nan + inf > 0 {
            let first = values.iter().position(|v| !v.is_finite()).unwrap_or(0);
            return Err(Error::Tensor {
                path: file.path().to_path_buf(),
                key,
                msg: format!("{nan} NaN and {inf} Inf of {} values stored as {storage} (first at flat index {first})", values.len()),
            });
        }
    }
    Ok(())
}

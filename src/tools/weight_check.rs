//! `--check-weights`: every floating tensor of a weights file must be finite. A NaN or Inf in a
//! checkpoint otherwise surfaces only as black images hours later.
use crate::error::{Error, Result};
use crate::io::safetensors::SafetensorsFile;
use crate::tensor::DType;

/// Ok when every float tensor of `file` is finite; else an error naming the first bad tensor
/// (sorted key order), how many NaN and Inf values it holds and where the first one is.
pub fn check_finite(file: &SafetensorsFile) -> Result<()> {
    for key in file.keys() {
        let tensor = file.tensor(&key)?;
        if tensor.dtype == DType::U32 {
            continue;
        }
        let values = tensor.to_f32();
        let nan = values.iter().filter(|v| v.is_nan()).count();
        let inf = values.iter().filter(|v| v.is_infinite()).count();
        if nan + inf > 0 {
            let first = values.iter().position(|v| !v.is_finite()).unwrap_or(0);
            return Err(Error::Tensor {
                path: file.path().to_path_buf(),
                key,
                msg: format!("{nan} NaN and {inf} Inf of {} values (first at flat index {first})", values.len()),
            });
        }
    }
    Ok(())
}

//! The one place where stored elements become f32 and back: f32 is copied, f16/bf16 are
//! widened (and rounded to nearest even on store), u32 is cast as in `tensor::bytes_to_f32`.
use crate::tensor::DType;
use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};
use std::slice;

/// Decodes `out.len()` elements of `dtype` starting at `ptr` into `out`.
///
/// # Safety
/// `ptr` must be aligned for `dtype`, valid for reads of `out.len()` elements, and not written
/// by anyone during the call.
pub(super) unsafe fn load(ptr: *const u8, dtype: DType, out: &mut [f32]) {
    let n = out.len();
    // SAFETY: guaranteed by the caller (see above).
    unsafe {
        match dtype {
            DType::F32 => out.copy_from_slice(slice::from_raw_parts(ptr.cast::<f32>(), n)),
            DType::F16 => slice::from_raw_parts(ptr.cast::<f16>(), n).convert_to_f32_slice(out),
            DType::BF16 => slice::from_raw_parts(ptr.cast::<bf16>(), n).convert_to_f32_slice(out),
            DType::U32 => {
                for (o, &v) in out.iter_mut().zip(slice::from_raw_parts(ptr.cast::<u32>(), n)) {
                    *o = v as f32;
                }
            }
        }
    }
}

/// Encodes `values` as `dtype` into the elements starting at `ptr`.
///
/// # Safety
/// `ptr` must be aligned for `dtype`, valid for writes of `values.len()` elements, and not
/// read or written by anyone else during the call.
pub(super) unsafe fn store(ptr: *mut u8, dtype: DType, values: &[f32]) {
    let n = values.len();
    // SAFETY: guaranteed by the caller (see above).
    unsafe {
        match dtype {
            DType::F32 => slice::from_raw_parts_mut(ptr.cast::<f32>(), n).copy_from_slice(values),
            DType::F16 => slice::from_raw_parts_mut(ptr.cast::<f16>(), n).convert_from_f32_slice(values),
            DType::BF16 => slice::from_raw_parts_mut(ptr.cast::<bf16>(), n).convert_from_f32_slice(values),
            DType::U32 => {
                for (o, &v) in slice::from_raw_parts_mut(ptr.cast::<u32>(), n).iter_mut().zip(values) {
                    *o = v as u32;
                }
            }
        }
    }
}

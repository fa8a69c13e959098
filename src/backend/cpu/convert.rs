//! The one place where stored elements become f32 and back: f32 is copied, f16/bf16 are
//! widened (and rounded to nearest even on store), u32 is cast as in `tensor::bytes_to_f32`.
use super::simd;
use crate::tensor::DType;
use half::f16;
use half::slice::HalfFloatSliceExt;
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
            DType::BF16 => {
                let bits = slice::from_raw_parts(ptr.cast::<u16>(), n);
                simd::vectorized(|| out.iter_mut().zip(bits).for_each(|(o, &b)| *o = f32::from_bits(u32::from(b) << 16)));
            }
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
            DType::BF16 => {
                let bits = slice::from_raw_parts_mut(ptr.cast::<u16>(), n);
                simd::vectorized(|| bits.iter_mut().zip(values).for_each(|(o, &v)| *o = bf16_bits(v)));
            }
            DType::U32 => {
                for (o, &v) in slice::from_raw_parts_mut(ptr.cast::<u32>(), n).iter_mut().zip(values) {
                    *o = v as u32;
                }
            }
        }
    }
}

/// f32 to bf16 bits, rounded to nearest even with NaN kept a quiet NaN, as `half::bf16::from_f32`
/// (adding 0x7fff plus the kept lowest bit carries exactly when the dropped half is above a
/// tie, or a tie with an odd kept part); branch-free, so slices of it vectorise.
#[inline(always)]
fn bf16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    let rounded = (b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16) as u16;
    if x.is_nan() {
        ((b >> 16) | 0x0040) as u16
    } else {
        rounded
    }
}

#[cfg(test)]
mod tests {
    use super::bf16_bits;
    use half::bf16;

    #[test]
    fn bf16_rounding_matches_half() {
        let specials = [0.0f32, -0.0, 1.0, f32::MAX, f32::MIN_POSITIVE, 1e-40, f32::INFINITY, f32::NEG_INFINITY, f32::NAN];
        let ties = (0..1u32 << 16).map(|low| f32::from_bits(0x3f80_0000 | low)).chain((0..1u32 << 16).map(|low| f32::from_bits(0xc2b4_0000 | low)));
        for x in specials.into_iter().chain(ties).chain((0..200_000u32).map(|i| f32::from_bits(i.wrapping_mul(2_654_435_761)))) {
            assert_eq!(bf16_bits(x), bf16::from_f32(x).to_bits(), "{x:e} ({:#010x})", x.to_bits());
        }
    }
}

//! Weights packed once and kept: a weight's panels (or transform) are built at its first product and reused
//! by every later launch (static graphs rebind nothing, so this is graph-build-time packing
//! without a separate pass). An entry is valid while its buffer has not been written since
//! (`write` bumps the buffer's version); buffers an op writes (activations) are never cached,
//! and a freed buffer's entries go with it.
use super::gemm::Isa;
use crate::backend::BufId;
use crate::tensor::DType;
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What a weight is packed into: one type of kept value per form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(super) enum PackForm {
    /// `gemm::PackedB`: the b operand of a product.
    B,
    /// `gemm::PackedA`: the a operand of a product.
    A,
    /// `conv::WinogradWeights`: a 3x3 convolution's weights in the Winograd domain.
    Winograd,
}

/// Which packing of which elements: the form, the view's buffer and first byte, the matrix
/// geometry over it ([rows, cols, row stride, col stride] in elements), the dtype and the kernel family.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct PackKey {
    pub form: PackForm,
    pub buf: BufId,
    pub byte_offset: usize,
    pub geometry: [usize; 4],
    pub dtype: DType,
    pub isa: Isa,
    pub bf16: bool,
}

/// One kept packing, of its form's type.
type Kept = Arc<dyn Any + Send + Sync>;

#[derive(Default)]
pub(super) struct PackCache {
    entries: Mutex<HashMap<PackKey, (u64, Kept)>>,
}

impl PackCache {
    /// The packing under `key` made while its buffer was at `version`, made now if missing or
    /// stale. `T` is the form's type (`PackForm`), so a kept entry is always a `T`.
    pub fn get_or_pack<T: Any + Send + Sync>(&self, key: PackKey, version: u64, make: impl FnOnce() -> T) -> Arc<T> {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((v, packed)) = entries.get(&key) {
            if let (true, Ok(packed)) = (*v == version, packed.clone().downcast::<T>()) {
                return packed;
            }
        }
        let packed = Arc::new(make());
        entries.insert(key, (version, packed.clone()));
        packed
    }

    /// Drops every packing of `buf`.
    pub fn forget(&self, buf: BufId) {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).retain(|key, _| key.buf != buf);
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::cpu::CpuBackend;
    use crate::backend::*;
    use crate::tensor::{bytes_to_f32, f32_to_bytes, DType};

    /// A weight the host rewrites after a product packed it is packed again, not served stale.
    #[test]
    fn a_rewritten_weight_is_packed_again() {
        let cpu = CpuBackend::new();
        let (m, n, k) = (3, 40, 17);
        let view = |len: usize| View { buf: cpu.alloc(len * 4).expect("alloc"), offset: 0, len, dtype: DType::F32 };
        let (x, w, out) = (view(m * k), view(n * k), view(m * n));
        cpu.write(x, &f32_to_bytes(&vec![1.0; m * k], DType::F32)).expect("write x");
        let gemm = Op::Gemm(Gemm { m, n, k, x, x_stride: k, w, w_stride: k, bias: None, out, act: Activation::None, accumulate: false });
        for value in [1.0f32, 2.0, 2.0, -3.0] {
            cpu.write(w, &f32_to_bytes(&vec![value; n * k], DType::F32)).expect("write w");
            cpu.launch(&gemm).expect("gemm");
            let got = bytes_to_f32(&cpu.read(out).expect("read"), DType::F32);
            assert!(got.iter().all(|&v| v == value * k as f32), "w = {value}: got {:?}", &got[..4]);
        }
    }

    /// The same for the kept forms of conv2d's weight (Winograd at 3x3 with 16 channels, the
    /// packed a operand at 1x1): each launch convolves with the weight as last written.
    #[test]
    fn a_rewritten_conv_weight_is_transformed_again() {
        let cpu = CpuBackend::new();
        let (c, h, w) = (16, 5, 6);
        let view = |len: usize| View { buf: cpu.alloc(len * 4).expect("alloc"), offset: 0, len, dtype: DType::F32 };
        for kernel in [3, 1] {
            let (x, weight, out) = (view(c * h * w), view(c * c * kernel * kernel), view(c * h * w));
            cpu.write(x, &f32_to_bytes(&vec![1.0; c * h * w], DType::F32)).expect("write x");
            let conv = Op::Conv2d(Conv2d { batch: 1, in_c: c, out_c: c, height: h, width: w, kernel, pad: kernel / 2, x, weight, bias: None, out });
            for value in [1.0f32, 2.0, 2.0, -3.0] {
                cpu.write(weight, &f32_to_bytes(&vec![value; c * c * kernel * kernel], DType::F32)).expect("write weight");
                cpu.launch(&conv).expect("conv2d");
                let got = bytes_to_f32(&cpu.read(out).expect("read"), DType::F32);
                // The centre pixel (2, 2) sees the whole kernel inside the image.
                let want = value * (c * kernel * kernel) as f32;
                assert!((got[2 * w + 2] - want).abs() < 1e-4, "kernel {kernel}, weight = {value}: got {}", got[2 * w + 2]);
            }
        }
    }
}

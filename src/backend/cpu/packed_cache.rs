//! b operands packed once and kept: a weight's panels are built at its first product and reused
//! by every later launch (static graphs rebind nothing, so this is graph-build-time packing
//! without a separate pass). An entry is valid while its buffer has not been written since
//! (`write` bumps the buffer's version); buffers an op writes (activations) are never cached,
//! and a freed buffer's entries go with it.
use super::gemm::{Isa, PackedB};
use crate::backend::BufId;
use crate::tensor::DType;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Which packing of which elements: the view's buffer and first byte, the matrix geometry over
/// it ([rows, cols, row stride, col stride] in elements), the dtype and the kernel family.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct PackKey {
    pub buf: BufId,
    pub byte_offset: usize,
    pub geometry: [usize; 4],
    pub dtype: DType,
    pub isa: Isa,
    pub bf16: bool,
}

#[derive(Default)]
pub(super) struct PackCache {
    entries: Mutex<HashMap<PackKey, (u64, Arc<PackedB>)>>,
}

impl PackCache {
    /// The packing under `key` made while its buffer was at `version`, made now if missing or stale.
    pub fn get_or_pack(&self, key: PackKey, version: u64, make: impl FnOnce() -> PackedB) -> Arc<PackedB> {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match entries.get(&key) {
            Some((v, packed)) if *v == version => packed.clone(),
            _ => {
                let packed = Arc::new(make());
                entries.insert(key, (version, packed.clone()));
                packed
            }
        }
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
}

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

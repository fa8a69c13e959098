//! Limits below an adapter's own, so tests on any adapter (lavapipe in CI) exercise what a
//! smaller one gets: WebGPU's default 128 MiB binding and 16 KiB of workgroup memory, small
//! buffers, no SHADER_F16. The device is requested with them, so wgpu enforces them too.

/// What to take away from the adapter; `Lowered::default()` takes nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Lowered {
    /// `max_storage_buffer_binding_size`: the most bytes one view may span.
    pub binding_bytes: Option<u64>,
    /// `max_buffer_size`: the largest buffer (the arena is one).
    pub buffer_bytes: Option<u64>,
    /// `max_compute_workgroup_storage_size`.
    pub workgroup_bytes: Option<u32>,
    /// Leave SHADER_F16 off even where the adapter has it.
    pub no_f16: bool,
}

impl Lowered {
    /// `limits` with each lowered one at most its lowered value (a lowered value above the
    /// adapter's changes nothing).
    pub(super) fn apply(&self, mut limits: wgpu::Limits) -> wgpu::Limits {
        if let Some(b) = self.binding_bytes {
            limits.max_storage_buffer_binding_size = limits.max_storage_buffer_binding_size.min(b);
        }
        if let Some(b) = self.buffer_bytes {
            limits.max_buffer_size = limits.max_buffer_size.min(b);
            // No binding spans more than a buffer holds.
            limits.max_storage_buffer_binding_size = limits.max_storage_buffer_binding_size.min(b);
        }
        if let Some(b) = self.workgroup_bytes {
            limits.max_compute_workgroup_storage_size = limits.max_compute_workgroup_storage_size.min(b);
        }
        limits
    }
}

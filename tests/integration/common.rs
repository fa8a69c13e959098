//! Helpers shared by the integration tests: the backends under test, seeded random inputs,
//! uploads inside NaN guard bands, NaN-poisoned outputs, and dtype-aware comparisons against
//! f64 references.
use std::sync::Arc;

use ditrt::backend::cpu::CpuBackend;
use ditrt::backend::{Backend, View};
use ditrt::tensor::{bytes_to_f32, f32_to_bytes, DType};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

pub const FLOAT_DTYPES: [DType; 3] = [DType::F32, DType::F16, DType::BF16];

/// Bytes of NaN around every test view: a backend writing outside its output view shows up
/// as a clobbered guard. 256 bytes keeps views at offsets GPUs like to bind.
const GUARD_BYTES: usize = 256;

/// Every backend compiled in and usable on this machine. GPU backends join when their feature
/// is enabled and a device answers; `cuda-emu` (the CUDA kernels on the host emulator) whenever
/// its feature is. `DITRT_BACKENDS=cuda,cpu` keeps only the backends whose
/// names start with one of those words (scripts/gpu_run.sh tests CUDA alone).
pub fn backends() -> Vec<Arc<dyn Backend>> {
    #[allow(unused_mut)]
    let mut backends: Vec<Arc<dyn Backend>> = vec![Arc::new(CpuBackend::new())];
    #[cfg(feature = "wgpu")]
    backends.extend(wgpu_backend());
    #[cfg(feature = "cuda")]
    backends.extend(cuda_backend());
    #[cfg(feature = "cuda-emu")]
    backends.push(Arc::new(ditrt::backend::cuda::emulated::CudaEmuBackend::new()));
    backends.retain(|b| wanted(&b.name()));
    backends
}

/// Whether `DITRT_BACKENDS` (unset: every backend) names the backend called `name`.
fn wanted(name: &str) -> bool {
    std::env::var("DITRT_BACKENDS").map_or(true, |wanted| wanted.split(',').any(|w| !w.trim().is_empty() && name.starts_with(w.trim())))
}

/// The backends to run `dtype` on: those of `backends()` that support it and, for f16, wgpu
/// once more with its f16 packed in u32, as on an adapter without SHADER_F16, where the shared
/// wgpu backend has SHADER_F16 (else it packs already).
pub fn backends_for(dtype: DType) -> Vec<Arc<dyn Backend>> {
    #[allow(unused_mut)]
    let mut backends: Vec<Arc<dyn Backend>> = backends().into_iter().filter(|b| b.supports(dtype)).collect();
    #[cfg(feature = "wgpu")]
    if dtype == DType::F16 {
        backends.extend(wgpu_packed_f16().filter(|b| wanted(&b.name())));
    }
    backends
}

/// The wgpu backend without SHADER_F16 (`Lowered::no_f16`), created once and shared, if the
/// adapter has SHADER_F16.
#[cfg(feature = "wgpu")]
fn wgpu_packed_f16() -> Option<Arc<dyn Backend>> {
    static PACKED: std::sync::OnceLock<Option<Arc<dyn Backend>>> = std::sync::OnceLock::new();
    let native = wgpu_backend()?;
    PACKED
        .get_or_init(|| {
            let native_f16 = !native.name().contains("packed");
            native_f16.then(|| wgpu_lowered(ditrt::backend::wgpu::Lowered { no_f16: true, ..Default::default() })).flatten()
        })
        .clone()
}

/// The CUDA backend, created once and shared by all tests. Without a driver or a device the
/// tests go on with the other backends, saying why (CI has no GPU).
#[cfg(feature = "cuda")]
fn cuda_backend() -> Option<Arc<dyn Backend>> {
    static CUDA: std::sync::OnceLock<Result<Arc<dyn Backend>, String>> = std::sync::OnceLock::new();
    let backend = CUDA.get_or_init(|| match ditrt::backend::cuda::CudaBackend::new() {
        Ok(b) => Ok(Arc::new(b)),
        Err(e) => Err(e.to_string()),
    });
    match backend {
        Ok(b) => Some(b.clone()),
        Err(e) => {
            println!("skipping cuda: {e}");
            None
        }
    }
}

/// The wgpu backend, created once and shared by all tests (one device, one pipeline cache).
/// Without an adapter the tests go on with the other backends, except under CI (env `CI`
/// set), where the wgpu tests must run: then it panics, saying why.
#[cfg(feature = "wgpu")]
pub fn wgpu_backend() -> Option<Arc<dyn Backend>> {
    static WGPU: std::sync::OnceLock<Result<Arc<dyn Backend>, String>> = std::sync::OnceLock::new();
    let backend = WGPU.get_or_init(|| match ditrt::backend::wgpu::WgpuBackend::new() {
        Ok(b) => Ok(Arc::new(b)),
        Err(e) => Err(e.to_string()),
    });
    backend.as_ref().map(Arc::clone).map_err(Clone::clone).map_or_else(wgpu_missing, Some)
}

/// A wgpu backend of its own with the adapter's limits lowered to `lowered`'s (what a smaller
/// adapter gets); without an adapter as `wgpu_backend`.
#[cfg(feature = "wgpu")]
pub fn wgpu_lowered(lowered: ditrt::backend::wgpu::Lowered) -> Option<Arc<dyn Backend>> {
    match ditrt::backend::wgpu::WgpuBackend::lowered(lowered) {
        Ok(b) => Some(Arc::new(b)),
        Err(e) => wgpu_missing(e.to_string()),
    }
}

/// Without an adapter: a panic under CI (env `CI` set), where the wgpu tests must run; else
/// None, saying why.
#[cfg(feature = "wgpu")]
fn wgpu_missing<T>(why: String) -> Option<T> {
    if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0") {
        panic!("CI is set but the wgpu backend is unavailable (.ci/run installs lavapipe): {why}");
    }
    println!("skipping wgpu: {why}");
    None
}

/// The seed of this test: `DITRT_TEST_SEED` if set, else fresh from the clock. It is printed,
/// and cargo test shows a failing test's output, so every failure can be replayed.
pub fn seed() -> u64 {
    let seed = match std::env::var("DITRT_TEST_SEED") {
        Ok(s) => s.trim().parse().unwrap_or_else(|_| panic!("DITRT_TEST_SEED={s} is not a u64")),
        Err(_) => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock before 1970");
            now.as_nanos() as u64
        }
    };
    println!("seed {seed} (replay with DITRT_TEST_SEED={seed})");
    seed
}

/// One (backend, dtype) combination under test and its random source.
pub struct Case<'a> {
    pub backend: &'a dyn Backend,
    pub dtype: DType,
    pub rng: StdRng,
}

/// Runs `body` once for every float dtype and every backend that supports it (`backends_for`),
/// each with a random source started from the test's seed.
pub fn for_each_case(mut body: impl FnMut(&mut Case)) {
    let seed = seed();
    for dtype in FLOAT_DTYPES {
        for backend in backends_for(dtype) {
            println!("case: {} / {dtype}", backend.name());
            body(&mut Case { backend: &*backend, dtype, rng: StdRng::seed_from_u64(seed) });
        }
    }
}

/// `values` rounded to what `dtype` can store, so references see exactly the uploaded inputs.
pub fn round_to(values: &[f32], dtype: DType) -> Vec<f32> {
    bytes_to_f32(&f32_to_bytes(values, dtype), dtype)
}

pub fn to_f64(values: &[f32]) -> Vec<f64> {
    values.iter().map(|&v| f64::from(v)).collect()
}

impl Case<'_> {
    /// `n` standard-normal values, representable in the case dtype.
    pub fn random(&mut self, n: usize) -> Vec<f32> {
        let values: Vec<f32> = (0..n).map(|_| self.rng.sample(StandardNormal)).collect();
        round_to(&values, self.dtype)
    }

    /// `n` values uniform in [lo, hi), representable in `dtype`.
    pub fn uniform(&mut self, n: usize, lo: f32, hi: f32, dtype: DType) -> Vec<f32> {
        let values: Vec<f32> = (0..n).map(|_| self.rng.random_range(lo..hi)).collect();
        round_to(&values, dtype)
    }

    /// A fresh view of `len` elements of `dtype` between NaN guard bands, filled with NaN.
    fn alloc_guarded(&self, len: usize, dtype: DType) -> View {
        let bytes = len * dtype.size() + 2 * GUARD_BYTES;
        let buf = self.backend.alloc(bytes).expect("alloc");
        let whole = View { buf, offset: 0, len: bytes / dtype.size(), dtype };
        self.backend.write(whole, &f32_to_bytes(&vec![f32::NAN; whole.len], dtype)).expect("write NaN");
        View { buf, offset: GUARD_BYTES, len, dtype }
    }

    /// Uploads `values` as the case dtype.
    pub fn input(&self, values: &[f32]) -> View {
        self.input_as(values, self.dtype)
    }

    pub fn input_as(&self, values: &[f32], dtype: DType) -> View {
        let view = self.alloc_guarded(values.len(), dtype);
        self.backend.write(view, &f32_to_bytes(values, dtype)).expect("upload");
        view
    }

    pub fn input_ids(&self, ids: &[u32]) -> View {
        let view = self.alloc_guarded(ids.len(), DType::U32);
        self.backend.write(view, bytemuck::cast_slice(ids)).expect("upload ids");
        view
    }

    /// An output of `len` elements of the case dtype, poisoned with NaN.
    pub fn output(&self, len: usize) -> View {
        self.alloc_guarded(len, self.dtype)
    }

    pub fn output_as(&self, len: usize, dtype: DType) -> View {
        self.alloc_guarded(len, dtype)
    }

    /// Fills `view` with NaN, so elements an op fails to write cannot pass.
    pub fn poison(&self, view: View) {
        self.backend.write(view, &f32_to_bytes(&vec![f32::NAN; view.len], view.dtype)).expect("poison");
    }

    /// Downloads a view made by `input`/`output` as f32, after checking that its guard bands
    /// are still all NaN (nothing wrote outside it).
    pub fn read(&self, view: View) -> Vec<f32> {
        self.backend.synchronize().expect("synchronize");
        let guard_len = GUARD_BYTES / view.dtype.size();
        let before = View { offset: view.offset - GUARD_BYTES, len: guard_len, ..view };
        let after = View { offset: view.offset + view.bytes(), len: guard_len, ..view };
        for (side, guard) in [("before", before), ("after", after)] {
            let values = bytes_to_f32(&self.backend.read(guard).expect("read guard"), view.dtype);
            assert!(values.iter().all(|v| v.is_nan()), "{}: something wrote into the guard band {side} a view", self.backend.name());
        }
        bytes_to_f32(&self.backend.read(view).expect("download"), view.dtype)
    }

    /// Compares with the case dtype's tolerance.
    pub fn check(&self, name: &str, got: &[f32], want: &[f64]) {
        self.check_as(name, got, want, self.dtype);
    }

    pub fn check_as(&self, name: &str, got: &[f32], want: &[f64], dtype: DType) {
        assert_close(&format!("{} / {name}", self.backend.name()), got, want, dtype);
    }
}

/// (relative to the reference's max |value|, absolute) error allowed for outputs of `dtype`.
fn tolerance(dtype: DType) -> (f64, f64) {
    match dtype {
        DType::F32 | DType::U32 => (1e-5, 1e-6),
        DType::F16 => (1e-2, 1e-3),
        DType::BF16 => (2e-2, 2e-3),
    }
}

/// Asserts |got - want| <= rtol * max|want| + atol elementwise (tolerances by `dtype`).
/// NaN never passes. The failure names the worst element, the max abs error and the rel_l2.
pub fn assert_close(name: &str, got: &[f32], want: &[f64], dtype: DType) {
    assert_eq!(got.len(), want.len(), "{name} [{dtype}]: got {} values, want {}", got.len(), want.len());
    let (rtol, atol) = tolerance(dtype);
    let scale = want.iter().fold(0.0f64, |m, w| m.max(w.abs()));
    let allowed = rtol * scale + atol;
    let mut worst: Option<(usize, f64)> = None;
    let (mut bad, mut err_sq, mut ref_sq) = (0, 0.0, 0.0);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        // NaN on either side counts as an infinite error.
        let err = (f64::from(g) - w).abs();
        let err = if err.is_nan() { f64::INFINITY } else { err };
        if err > allowed {
            bad += 1;
        }
        if worst.is_none_or(|(_, e)| err > e) {
            worst = Some((i, err));
        }
        err_sq += err * err;
        ref_sq += w * w;
    }
    if bad > 0 {
        let (i, err) = worst.expect("a bad element exists");
        let rel_l2 = (err_sq / ref_sq).sqrt();
        panic!(
            "{name} [{dtype}]: {bad} of {} elements outside tolerance {allowed:.3e} (scale {scale:.3e}); \
             max abs err {err:.3e} at index {i} (got {}, want {}); rel_l2 {rel_l2:.3e}",
            got.len(),
            got[i],
            want[i]
        );
    }
}

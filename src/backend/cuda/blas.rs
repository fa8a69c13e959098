//! cuBLASLt for the linear layers, through cudarc's raw bindings (its safe wrapper assumes one
//! dtype per call, 256-byte aligned pointers and TF32 for f32, none of which holds here).
//!
//! A row-major product out[m, n] = x[m, k] w[n, k]^T is, column-major, the [n, m] matrix
//! D = op(A) B with A = w stored [k, n] (ld = w_stride) and op = transpose, B = x stored [k, m]
//! (ld = x_stride), D dense [n, m] (ld = n). The bias (length n) runs along D's rows, as the
//! BIAS epilogue adds it. f32 computes in plain f32 (no TF32: the f32 tests hold to 1e-5), f16
//! and bf16 accumulate in f32.
use std::ffi::c_void;
use std::mem::size_of;

use cudarc::cublaslt::result::{self, CublasError};
use cudarc::cublaslt::sys;
use cudarc::driver::result as driver;
use cudarc::driver::sys::{CUdeviceptr, CUevent_flags, CUstreamCaptureStatus};
use cudarc::driver::CudaStream;

use super::device::err;
use super::gemm_choice::{fastest, Choices, GemmKey, CANDIDATES, TIMED_RUNS};
use crate::error::Result;
use crate::tensor::DType;

/// cuBLASLt's recommended workspace for Hopper (4 MiB suffices before it).
const WORKSPACE_BYTES: usize = 32 << 20;

/// cublasOperation_t (cublas_api.h).
const OP_N: i32 = 0;
const OP_T: i32 = 1;

pub(super) struct Blas {
    handle: sys::cublasLtHandle_t,
    workspace: CUdeviceptr,
    /// cublasLtGetVersion, e.g. 130000.
    pub version: usize,
    /// The algorithm kept for each product met so far.
    choices: Choices<sys::cublasLtMatmulAlgo_t>,
}

// SAFETY: the handle and workspace are used only under the backend's stream lock (memory.rs),
// one call at a time, as cuBLASLt requires of a handle shared between threads.
unsafe impl Send for Blas {}
unsafe impl Sync for Blas {}

impl Drop for Blas {
    fn drop(&mut self) {
        // SAFETY: created in `open`; the backend is being dropped, nothing is queued that the
        // caller did not wait for (the stream is synchronized by the last buffer drop or read).
        unsafe {
            let _ = result::destroy_handle(self.handle);
            let _ = driver::free_sync(self.workspace);
        }
    }
}

/// One product in row-major terms: out[m, n] (+)= x[m, k] w[n, k]^T (+ bias) (GELU-tanh).
pub(super) struct RowMajorGemm {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub x: CUdeviceptr,
    pub x_stride: usize,
    pub w: CUdeviceptr,
    pub w_stride: usize,
    pub out: CUdeviceptr,
    /// Added by the epilogue: must be `BIAS_ALIGNMENT`-aligned (`bias_fits_epilogue`).
    pub bias: Option<CUdeviceptr>,
    /// The GELU epilogue of cuBLASLt: the tanh approximation.
    pub gelu_tanh: bool,
    /// beta = 1: add to what out holds (before the epilogue's activation, so only without it).
    pub accumulate: bool,
    pub dtype: DType,
}

impl Blas {
    /// cuBLASLt with its workspace on `stream`'s device, or None when the library is absent.
    pub fn open(stream: &CudaStream) -> Result<Option<Blas>> {
        // SAFETY: only tries to dlopen the library.
        if !unsafe { sys::is_culib_present() } {
            return Ok(None);
        }
        let blas_err = |what: &str, e: CublasError| err(format!("cuBLASLt: {what}: {e}"));
        let handle = result::create_handle().map_err(|e| blas_err("create", e))?;
        stream.context().bind_to_thread().map_err(|e| err(format!("binding the context: {e}")))?;
        // SAFETY: a plain allocation, freed in Drop.
        let workspace = match unsafe { driver::malloc_sync(WORKSPACE_BYTES) } {
            Ok(w) => w,
            Err(e) => {
                // SAFETY: created just above, not used since.
                let _ = unsafe { result::destroy_handle(handle) };
                return Err(err(format!("cuBLASLt workspace: {e}")));
            }
        };
        // SAFETY: a plain query.
        let version = unsafe { sys::cublasLtGetVersion() };
        Ok(Some(Blas { handle, workspace, version, choices: Choices::new() }))
    }

    /// Queues the product on `stream`; Ok(false) when cuBLASLt has no algorithm for it (the
    /// caller falls back to kernels/linear.cu). m, n and k must be non-zero. The algorithm is
    /// the fastest of the heuristic's top candidates, timed the first time (`gemm_choice`).
    pub fn gemm(&self, g: &RowMajorGemm, stream: &CudaStream) -> Result<bool> {
        let fail = |what: &str, e: CublasError| err(format!("gemm m={} n={} k={} ({}): cuBLASLt {what}: {e}", g.m, g.n, g.k, g.dtype));
        let ty = data_type(g.dtype);
        // With a single row (column of B / A) the stride is never stepped: any ld >= k does.
        let a = Layout::new(ty, g.k, g.n, g.w_stride.max(g.k)).map_err(|e| fail("layout", e))?;
        let b = Layout::new(ty, g.k, g.m, g.x_stride.max(g.k)).map_err(|e| fail("layout", e))?;
        let d = Layout::new(ty, g.n, g.m, g.n).map_err(|e| fail("layout", e))?;
        let desc = Desc::new(g).map_err(|e| fail("descriptor", e))?;
        let call = Call { g, desc: &desc, a: &a, b: &b, d: &d };
        let key = GemmKey {
            m: g.m,
            n: g.n,
            k: g.k,
            x_stride: g.x_stride,
            w_stride: g.w_stride,
            dtype: g.dtype,
            bias: g.bias.is_some(),
            gelu_tanh: g.gelu_tanh,
            accumulate: g.accumulate,
            alignments: [alignment(g.x), alignment(g.w), alignment(g.out)],
        };
        let algo = match self.choices.get(&key) {
            Some(algo) => algo,
            None => {
                let pref = Pref::new(g).map_err(|e| fail("preferences", e))?;
                let candidates = self.candidates(&call, &pref).map_err(|e| fail("heuristic", e))?;
                let capturing = stream.capture_status().map_err(|e| err(format!("stream capture status: {e}")))?
                    != CUstreamCaptureStatus::CU_STREAM_CAPTURE_STATUS_NONE;
                match candidates.first() {
                    None => return Ok(false),
                    // Nothing can be timed inside a capture: the heuristic's choice, not kept.
                    Some(&first) if capturing => first,
                    Some(_) => {
                        let algo = self.time_candidates(&call, &candidates, stream)?;
                        self.choices.keep(key, algo);
                        algo
                    }
                }
            }
        };
        self.matmul(&call, &algo, g.out, stream).map_err(|e| fail("matmul", e))?;
        Ok(true)
    }

    /// The heuristic's candidates for `call`, best first, those it marks runnable.
    fn candidates(&self, call: &Call, pref: &Pref) -> std::result::Result<Vec<sys::cublasLtMatmulAlgo_t>, CublasError> {
        // SAFETY: plain data, filled by cuBLASLt up to `count`.
        let mut results: [sys::cublasLtMatmulHeuristicResult_t; CANDIDATES] = unsafe { std::mem::zeroed() };
        let mut count = 0;
        let (desc, a, b, d) = (call.desc.0, call.a.0, call.b.0, call.d.0);
        // SAFETY: every descriptor is live for the call; `results` holds CANDIDATES entries.
        let status = unsafe {
            sys::cublasLtMatmulAlgoGetHeuristic(self.handle, desc, a, b, d, d, pref.0, CANDIDATES as i32, results.as_mut_ptr(), &mut count)
        };
        match status {
            sys::cublasStatus_t::CUBLAS_STATUS_NOT_SUPPORTED => return Ok(Vec::new()),
            other => other.result()?,
        }
        let offered = results.iter().take(count.max(0) as usize);
        Ok(offered.filter(|r| r.state == sys::cublasStatus_t::CUBLAS_STATUS_SUCCESS).map(|r| r.algo).collect())
    }

    /// The fastest of `candidates`, each run once untimed and TIMED_RUNS times between two
    /// events, into a scratch output of out's size (so the product the caller queues next is
    /// the only one that lands in out, accumulating or not).
    fn time_candidates(&self, call: &Call, candidates: &[sys::cublasLtMatmulAlgo_t], stream: &CudaStream) -> Result<sys::cublasLtMatmulAlgo_t> {
        let g = call.g;
        let bytes = g.n * g.m * g.dtype.size();
        // SAFETY: a plain allocation, freed by the guard after the stream is synchronized.
        let scratch =
            Scratch(unsafe { driver::malloc_sync(bytes) }.map_err(|e| err(format!("cuBLASLt timing scratch of {bytes} bytes: {e}")))?, stream);
        let event = || stream.context().new_event(Some(CUevent_flags::CU_EVENT_DEFAULT)).map_err(|e| err(format!("event: {e}")));
        let (start, end) = (event()?, event()?);
        fastest(candidates, |algo| {
            let run = || self.matmul(call, algo, scratch.0, stream).map_err(|e| err(format!("cuBLASLt timing run: {e}")));
            run()?;
            start.record(stream).map_err(|e| err(format!("event: {e}")))?;
            for _ in 0..TIMED_RUNS {
                run()?;
            }
            end.record(stream).map_err(|e| err(format!("event: {e}")))?;
            start.elapsed_ms(&end).map_err(|e| err(format!("event: {e}")))
        })
    }

    fn matmul(&self, call: &Call, algo: &sys::cublasLtMatmulAlgo_t, out: CUdeviceptr, stream: &CudaStream) -> std::result::Result<(), CublasError> {
        let g = call.g;
        let (alpha, beta) = (1.0f32, if g.accumulate { 1.0f32 } else { 0.0 });
        // SAFETY: the pointers address live device buffers the caller checked against these
        // layouts (out: the product's own, or a scratch of its size); C and D are the same
        // matrix (in place, as cuBLASLt allows for equal layouts).
        unsafe {
            result::matmul(
                self.handle,
                call.desc.0,
                (&alpha as *const f32).cast(),
                (&beta as *const f32).cast(),
                g.w as *const c_void,
                call.a.0,
                g.x as *const c_void,
                call.b.0,
                out as *const c_void,
                call.d.0,
                out as *mut c_void,
                call.d.0,
                algo,
                self.workspace as *mut c_void,
                WORKSPACE_BYTES,
                stream.cu_stream() as sys::cudaStream_t,
            )
        }
    }
}

/// One product's descriptors.
struct Call<'a> {
    g: &'a RowMajorGemm,
    desc: &'a Desc,
    a: &'a Layout,
    b: &'a Layout,
    d: &'a Layout,
}

/// The timing runs' output, freed once the stream has finished with it.
struct Scratch<'a>(CUdeviceptr, &'a CudaStream);

impl Drop for Scratch<'_> {
    fn drop(&mut self) {
        let _ = self.1.synchronize();
        // SAFETY: allocated in `time_candidates`, no queued work uses it any more.
        let _ = unsafe { driver::free_sync(self.0) };
    }
}

fn data_type(dtype: DType) -> sys::cudaDataType {
    match dtype {
        DType::F16 => sys::cudaDataType_t::CUDA_R_16F,
        DType::BF16 => sys::cudaDataType_t::CUDA_R_16BF,
        DType::F32 | DType::U32 => sys::cudaDataType_t::CUDA_R_32F,
    }
}

/// The alignment in bytes cuBLASLt's bias epilogues need of the bias pointer (unlike the
/// matrices, whose alignment is passed as a preference, it is not negotiable).
const BIAS_ALIGNMENT: u32 = 16;

/// Whether a bias at `ptr` can go to the BIAS / GELU_BIAS epilogue: offsets into a graph's
/// arena are aligned only to their dtype; otherwise the bias is added by a kernel afterwards.
pub(super) fn bias_fits_epilogue(ptr: CUdeviceptr) -> bool {
    alignment(ptr) >= BIAS_ALIGNMENT
}

/// The largest power of two (at most 256) dividing a device address: what cuBLASLt may assume.
fn alignment(ptr: CUdeviceptr) -> u32 {
    1u32 << ptr.trailing_zeros().min(8)
}

struct Layout(sys::cublasLtMatrixLayout_t);

impl Layout {
    fn new(ty: sys::cudaDataType, rows: usize, cols: usize, ld: usize) -> std::result::Result<Layout, CublasError> {
        result::create_matrix_layout(ty, rows as u64, cols as u64, ld as i64).map(Layout)
    }
}

impl Drop for Layout {
    fn drop(&mut self) {
        // SAFETY: created in `new`, destroyed once.
        let _ = unsafe { result::destroy_matrix_layout(self.0) };
    }
}

struct Desc(sys::cublasLtMatmulDesc_t);

impl Desc {
    fn new(g: &RowMajorGemm) -> std::result::Result<Desc, CublasError> {
        use sys::cublasLtEpilogue_t as E;
        use sys::cublasLtMatmulDescAttributes_t as A;
        let desc = Desc(result::create_matmul_desc(sys::cublasComputeType_t::CUBLAS_COMPUTE_32F, sys::cudaDataType_t::CUDA_R_32F)?);
        let epilogue = match (g.bias.is_some(), g.gelu_tanh) {
            (false, false) => E::CUBLASLT_EPILOGUE_DEFAULT,
            (true, false) => E::CUBLASLT_EPILOGUE_BIAS,
            (false, true) => E::CUBLASLT_EPILOGUE_GELU,
            (true, true) => E::CUBLASLT_EPILOGUE_GELU_BIAS,
        };
        // SAFETY: each value has the type cuBLASLt documents for its attribute.
        unsafe {
            set_desc(&desc, A::CUBLASLT_MATMUL_DESC_TRANSA, &OP_T)?;
            set_desc(&desc, A::CUBLASLT_MATMUL_DESC_TRANSB, &OP_N)?;
            set_desc(&desc, A::CUBLASLT_MATMUL_DESC_EPILOGUE, &(epilogue as u32))?;
            if let Some(bias) = g.bias {
                set_desc(&desc, A::CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias)?;
            }
        }
        Ok(desc)
    }
}

/// # Safety
/// `T` must be the type cuBLASLt documents for `attr`.
unsafe fn set_desc<T>(desc: &Desc, attr: sys::cublasLtMatmulDescAttributes_t, value: &T) -> std::result::Result<(), CublasError> {
    unsafe { result::set_matmul_desc_attribute(desc.0, attr, (value as *const T).cast(), size_of::<T>()) }
}

impl Drop for Desc {
    fn drop(&mut self) {
        // SAFETY: created in `new`, destroyed once.
        let _ = unsafe { result::destroy_matmul_desc(self.0) };
    }
}

/// Heuristic preferences: the workspace we have and the true alignment of every pointer (the
/// default assumes 256 bytes, which offsets into the graph's arena need not have).
struct Pref(sys::cublasLtMatmulPreference_t);

impl Pref {
    fn new(g: &RowMajorGemm) -> std::result::Result<Pref, CublasError> {
        use sys::cublasLtMatmulPreferenceAttributes_t as P;
        let pref = Pref(result::create_matmul_pref()?);
        let set = |attr, value: *const c_void, size| {
            // SAFETY: each value has the type cuBLASLt documents for its attribute.
            unsafe { result::set_matmul_pref_attribute(pref.0, attr, value, size) }
        };
        let workspace = WORKSPACE_BYTES as u64;
        set(P::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, (&workspace as *const u64).cast(), size_of::<u64>())?;
        for (attr, ptr) in [
            (P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, g.w),
            (P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, g.x),
            (P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, g.out),
            (P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, g.out),
        ] {
            let bytes = alignment(ptr);
            set(attr, (&bytes as *const u32).cast(), size_of::<u32>())?;
        }
        Ok(pref)
    }
}

impl Drop for Pref {
    fn drop(&mut self) {
        // SAFETY: created in `new`, destroyed once.
        let _ = unsafe { result::destroy_matmul_pref(self.0) };
    }
}

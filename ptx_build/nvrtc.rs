//! NVRTC at build time, opened with dlopen by its full path: a build script cannot change the
//! library search path of its own process, and the NVRTC of the pinned wheels is not on it.
//! Only what compiling one source to PTX needs; no crates (ptx_build/ptx_tool.rs is built by plain
//! rustc).
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::Path;

extern "C" {
    fn dlopen(filename: *const c_char, flag: c_int) -> *mut c_void;
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    fn dlerror() -> *const c_char;
}

const RTLD_NOW: c_int = 2;
const NVRTC_SUCCESS: c_int = 0;

type Program = *mut c_void;
type CreateProgram = unsafe extern "C" fn(*mut Program, *const c_char, *const c_char, c_int, *const *const c_char, *const *const c_char) -> c_int;
type CompileProgram = unsafe extern "C" fn(Program, c_int, *const *const c_char) -> c_int;
type GetSize = unsafe extern "C" fn(Program, *mut usize) -> c_int;
type GetText = unsafe extern "C" fn(Program, *mut c_char) -> c_int;
type DestroyProgram = unsafe extern "C" fn(*mut Program) -> c_int;
type Version = unsafe extern "C" fn(*mut c_int, *mut c_int) -> c_int;

pub struct Nvrtc {
    create: CreateProgram,
    compile: CompileProgram,
    ptx_size: GetSize,
    ptx: GetText,
    log_size: GetSize,
    log: GetText,
    destroy: DestroyProgram,
    /// (major, minor) of the library.
    pub version: (i32, i32),
}

/// The symbol `name` of `lib` as a function pointer of type `F`.
///
/// # Safety
/// `F` must be the C signature of that symbol.
unsafe fn symbol<F: Copy>(lib: *mut c_void, name: &str) -> Result<F, String> {
    let c_name = CString::new(name).expect("symbol names have no NUL");
    let ptr = unsafe { dlsym(lib, c_name.as_ptr()) };
    if ptr.is_null() {
        return Err(format!("NVRTC has no symbol {name}"));
    }
    // SAFETY: a non-null symbol address reinterpreted as the function type the caller names.
    Ok(unsafe { std::mem::transmute_copy::<*mut c_void, F>(&ptr) })
}

impl Nvrtc {
    /// Opens the NVRTC library at `path` (it is never closed: one per process).
    pub fn open(path: &Path) -> Result<Nvrtc, String> {
        let c_path = CString::new(path.to_string_lossy().as_bytes()).map_err(|_| format!("{}: path has a NUL", path.display()))?;
        // SAFETY: dlopen/dlerror with a valid C string; the handle is kept for the process.
        let lib = unsafe { dlopen(c_path.as_ptr(), RTLD_NOW) };
        if lib.is_null() {
            // SAFETY: dlerror returns a C string describing the last failure (or null).
            let why = unsafe { dlerror() };
            let why = if why.is_null() { "unknown error".into() } else { unsafe { CStr::from_ptr(why) }.to_string_lossy().into_owned() };
            return Err(format!("cannot open {}: {why}", path.display()));
        }
        // SAFETY: each type alias is the signature of the nvrtc.h function of that name.
        unsafe {
            let version_fn: Version = symbol(lib, "nvrtcVersion")?;
            let (mut major, mut minor) = (0, 0);
            version_fn(&mut major, &mut minor);
            Ok(Nvrtc {
                create: symbol(lib, "nvrtcCreateProgram")?,
                compile: symbol(lib, "nvrtcCompileProgram")?,
                ptx_size: symbol(lib, "nvrtcGetPTXSize")?,
                ptx: symbol(lib, "nvrtcGetPTX")?,
                log_size: symbol(lib, "nvrtcGetProgramLogSize")?,
                log: symbol(lib, "nvrtcGetProgramLog")?,
                destroy: symbol(lib, "nvrtcDestroyProgram")?,
                version: (major, minor),
            })
        }
    }

    /// The PTX of `source` (called `name` in messages) compiled with `options`; `headers` are
    /// (include name, text) pairs that `#include "name"` resolves to.
    pub fn compile(&self, name: &str, source: &str, headers: &[(String, String)], options: &[String]) -> Result<String, String> {
        let c = |s: &str| CString::new(s).map_err(|_| format!("{name}: text has a NUL byte"));
        let c_source = c(source)?;
        let c_name = c(name)?;
        let header_texts = headers.iter().map(|(_, text)| c(text)).collect::<Result<Vec<_>, _>>()?;
        let header_names = headers.iter().map(|(n, _)| c(n)).collect::<Result<Vec<_>, _>>()?;
        let c_options = options.iter().map(|o| c(o)).collect::<Result<Vec<_>, _>>()?;
        let ptrs = |v: &[CString]| v.iter().map(|s| s.as_ptr()).collect::<Vec<_>>();
        let (text_ptrs, name_ptrs, option_ptrs) = (ptrs(&header_texts), ptrs(&header_names), ptrs(&c_options));
        let mut program: Program = std::ptr::null_mut();
        // SAFETY: every pointer is a live C string (or an array of them) for these calls; the
        // program is destroyed below on every path.
        unsafe {
            let created =
                (self.create)(&mut program, c_source.as_ptr(), c_name.as_ptr(), headers.len() as c_int, text_ptrs.as_ptr(), name_ptrs.as_ptr());
            if created != NVRTC_SUCCESS {
                return Err(format!("{name}: nvrtcCreateProgram failed with code {created}"));
            }
            let compiled = (self.compile)(program, option_ptrs.len() as c_int, option_ptrs.as_ptr());
            let log = self.text(program, self.log_size, self.log);
            let result = match compiled {
                NVRTC_SUCCESS => self.text(program, self.ptx_size, self.ptx),
                code => Err(format!("{name}: NVRTC error {code}:\n{}", log.unwrap_or_default())),
            };
            (self.destroy)(&mut program);
            result
        }
    }

    /// A text of the program (its log or its PTX), without the trailing NUL.
    ///
    /// # Safety
    /// `program` must be a live NVRTC program and `size`/`text` a matching getter pair.
    unsafe fn text(&self, program: Program, size: GetSize, text: GetText) -> Result<String, String> {
        let mut len = 0usize;
        if unsafe { size(program, &mut len) } != NVRTC_SUCCESS {
            return Err("NVRTC: cannot get a text size".into());
        }
        let mut buf = vec![0u8; len.max(1)];
        if unsafe { text(program, buf.as_mut_ptr().cast()) } != NVRTC_SUCCESS {
            return Err("NVRTC: cannot get a text".into());
        }
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
    }
}

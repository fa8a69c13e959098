//! With feature `cuda-emu`, compiles kernels/*.cu for the host emulator (kernels/emu/) with the
//! system C++ compiler (`CXX`, else c++) into $OUT_DIR/libditrt_emu.a: every kernel file with
//! kernels/emu/cuda_emu.h force-included and -fsanitize=thread instrumentation (whose hooks
//! kernels/emu/runtime.cpp defines; the TSan runtime is not linked), plus a table of its
//! `extern "C"` kernels, and the planted-bug variants of `PLANTED` the emulator tests must catch.
use std::path::{Path, PathBuf};
use std::process::Command;

use super::kernels;

/// Kernels for the emulator only: the tests of ptx_ops.cuh's emulated twins
/// (src/backend/cuda/emulated/ptx_ops.rs), module `ptx_ops_test`.
const TEST_KERNELS: &str = "emu/ptx_ops_test.cu";

/// Variants of a kernel file with one bug planted: (module name, file, text replaced, by).
/// Each compiles into its own namespace; its kernels are launched as module `name`.
const PLANTED: [(&str, &str, &str, &str); 4] = [
    // The second and third A registers of the Q fragments swapped (rows g + 8 and cols + 8).
    (
        "attention.swapped_fragment",
        "attention.cu",
        "qa[s][1] = q_pair(1, 16 * s + 2 * t);\n        qa[s][2] = q_pair(0, 16 * s + 8 + 2 * t);",
        "qa[s][2] = q_pair(1, 16 * s + 2 * t);\n        qa[s][1] = q_pair(0, 16 * s + 8 + 2 * t);",
    ),
    // The barrier before the V tile is overwritten (and after which the K tile is read).
    ("attention.missing_sync", "attention.cu", "__syncthreads();  // the K tile is in; every warp is done with the previous V tile", ""),
    // V fragments loaded untransposed: rows where the mma expects columns.
    ("attention.untransposed_v", "attention.cu", "ldmatrix_x4_trans(vb, vr + d);", "ldmatrix_x4(vb, vr + d);"),
    // No cp.async wait before the V tile is read: its copies have not landed.
    (
        "attention.missing_wait",
        "attention.cu",
        "cp_async_wait_group<0>();\n        __syncthreads();  // the V tile is in",
        "__syncthreads();  // the V tile is in",
    ),
];

fn compiler() -> String {
    std::env::var("CXX").unwrap_or_else(|_| "c++".into())
}

fn run(command: &mut Command) -> Result<Vec<u8>, String> {
    let out = command.output().map_err(|e| format!("running {command:?}: {e}"))?;
    match out.status.success() {
        true => Ok(out.stdout),
        false => Err(format!("{command:?}: {}", String::from_utf8_lossy(&out.stderr))),
    }
}

/// Flags of a kernel translation unit: C++17 as NVRTC gets, the emulation header, initial-exec
/// TLS (the `__shared__` variables must sit in the static TLS block), and no scalar replacement
/// of aggregates, so that a 16-byte struct copy (attention.cu's Vec16) stays one 16-byte access
/// for the hooks, as it is one 128-bit load or store on the GPU.
fn kernel_flags(dir: &Path) -> Vec<String> {
    let header = dir.join("emu/cuda_emu.h");
    let mut flags: Vec<String> =
        ["-x", "c++", "-std=c++17", "-O2", "-fPIC", "-DDITRT_EMU", "-Wno-unknown-pragmas", "-ftls-model=initial-exec", "-fno-tree-sra"]
            .map(String::from)
            .into();
    flags.extend(["-include".into(), header.display().to_string(), format!("-I{}", dir.display()), format!("-I{}", dir.join("emu").display())]);
    flags
}

/// The kernels a .cu file defines, in order: the names after each `__global__`.
fn kernel_names(dir: &Path, file: &Path) -> Result<Vec<String>, String> {
    let text = run(Command::new(compiler()).args(kernel_flags(dir)).args(["-E", "-P", "-DDITRT_EMU_SCAN"]).arg(file))?;
    let text = String::from_utf8_lossy(&text);
    let names = text.split("ditrt_emu_kernel").skip(1).filter_map(|rest| {
        let rest = rest.trim_start().strip_prefix("void")?.trim_start();
        Some(rest.split(|c: char| !(c.is_alphanumeric() || c == '_')).next()?.to_string())
    });
    Ok(names.collect())
}

fn symbol(module: &str) -> String {
    format!("emu_module_{}", module.replace('.', "_"))
}

/// The translation unit of `module`: `body` (the kernel source or an include of it) and its table.
fn module_source(module: &str, body: &str, names: &[String], namespace: Option<&str>) -> String {
    let qualified = |n: &str| namespace.map_or(n.to_string(), |ns| format!("{ns}::{n}"));
    let entries: String = names.iter().map(|n| format!("    EMU_ENTRY({n:?}, {})\n", qualified(n))).collect();
    let sym = symbol(module);
    format!(
        "{body}\n#include \"registry.h\"\nstatic const emu::Entry entries[] = {{\n{entries}    {{nullptr, nullptr, nullptr}}}};\n\
         extern const emu::Module {sym};\nconst emu::Module {sym} = {{{module:?}, entries}};\n"
    )
}

/// A planted variant: the file's text with `from` replaced by `to`, in namespace `ns` with C++
/// linkage (its kernels' names are the originals'); common.cuh comes first, outside it.
fn planted_body(dir: &Path, file: &str, from: &str, to: &str, ns: &str) -> Result<String, String> {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if text.matches(from).count() != 1 {
        return Err(format!("planted bug: {file} no longer contains {from:?} exactly once; update ptx_build/emulator.rs PLANTED"));
    }
    let mutated = text.replace(from, to).replace("extern \"C\"", "");
    Ok(format!("#include \"common.cuh\"\nnamespace {ns} {{\n{mutated}\n}}\n"))
}

/// Builds $OUT_DIR/libditrt_emu.a and tells cargo to link it.
pub fn build(repository: &Path, out_dir: &Path) -> Result<(), String> {
    let dir = repository.join("kernels");
    let work = out_dir.join("emu");
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let write = |name: &str, text: &str| -> Result<PathBuf, String> {
        let path = work.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    };
    let mut units = Vec::new();
    let mut modules = Vec::new();
    for file in kernels::files(&dir, "cu")? {
        let module = file.file_stem().expect("listed files have names").to_string_lossy().into_owned();
        let names = kernel_names(&dir, &file)?;
        units.push(write(&format!("{module}.cpp"), &module_source(&module, &format!("#include {:?}", file.display().to_string()), &names, None))?);
        for (planted, source, from, to) in PLANTED.iter().filter(|p| p.1 == file.file_name().expect("named").to_string_lossy()) {
            let ns = format!("planted_{}", planted.replace('.', "_"));
            let body = planted_body(&dir, source, from, to, &ns)?;
            units.push(write(&format!("{planted}.cpp"), &module_source(planted, &body, &names, Some(&ns)))?);
            modules.push(planted.to_string());
        }
        modules.push(module);
    }
    let tests = dir.join(TEST_KERNELS);
    let names = kernel_names(&dir, &tests)?;
    units.push(write("ptx_ops_test.cpp", &module_source("ptx_ops_test", &format!("#include {:?}", tests.display().to_string()), &names, None))?);
    modules.push("ptx_ops_test".to_string());
    let externs: String = modules.iter().map(|m| format!("extern const emu::Module {};\n", symbol(m))).collect();
    let list: String = modules.iter().map(|m| format!("&{}, ", symbol(m))).collect();
    let registry = format!("#include \"registry.h\"\n{externs}extern const emu::Module* const emu_modules[] = {{{list}nullptr}};\n");
    let runtime = dir.join("emu/runtime.cpp");
    let mut jobs: Vec<(PathBuf, bool)> = units.into_iter().map(|u| (u, true)).collect();
    jobs.push((write("registry.cpp", &registry)?, false));
    jobs.push((runtime, false));
    let objects = kernels::on_all_cores(&jobs, |(source, instrumented)| {
        let object = work.join(format!("{}.o", source.file_stem().expect("named").to_string_lossy()));
        let mut command = Command::new(compiler());
        match instrumented {
            true => command.args(kernel_flags(&dir)).arg("-fsanitize=thread"),
            false => command.args([
                "-std=c++20",
                "-O2",
                "-fPIC",
                "-DDITRT_EMU",
                &format!("-I{}", dir.display()),
                &format!("-I{}", dir.join("emu").display()),
            ]),
        };
        run(command.arg("-c").arg(source).arg("-o").arg(&object)).map(|_| object)
    })
    .into_iter()
    .collect::<Result<Vec<_>, String>>()?;
    let archive = out_dir.join("libditrt_emu.a");
    let _ = std::fs::remove_file(&archive);
    run(Command::new("ar").arg("crs").arg(&archive).args(&objects))?;
    println!("cargo:rustc-link-search=native={}", out_dir.display());
    println!("cargo:rustc-link-lib=static=ditrt_emu");
    println!("cargo:rustc-link-lib=stdc++");
    Ok(())
}

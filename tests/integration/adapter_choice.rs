//! Which adapter wgpu runs on: `WGPU_ADAPTER_NAME` takes the first whose name contains it (any
//! case), none matching is a one-line error listing the adapters, and `auto` says in one line
//! why it passed wgpu over.
use ditrt::backend::wgpu::WgpuBackend;
use ditrt::backend::Backend;

/// `ditrt bench` of a small preset, one forward, with `WGPU_ADAPTER_NAME` set: (exit code, stdout, stderr).
fn bench_with_adapter_name(backend: &str, part: &str) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ditrt"))
        .args(["bench", "--preset", "DiT-S/8", "--backend", backend, "--iters", "1", "--warmup", "0"])
        .env("WGPU_ADAPTER_NAME", part)
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn an_adapter_name_that_matches_none_is_one_line_naming_the_variable() {
    let (code, _, stderr) = bench_with_adapter_name("wgpu", "no-such-adapter");
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("WGPU_ADAPTER_NAME='no-such-adapter' is part of no adapter's name") && stderr.contains("found: "), "{stderr}");
}

#[test]
fn auto_says_in_one_line_why_it_runs_on_the_cpu() {
    let (code, stdout, stderr) = bench_with_adapter_name("auto", "no-such-adapter");
    assert_eq!(code, Some(0), "{stderr}");
    if stdout.contains("on cuda") {
        return eprintln!("skipped: auto chose CUDA, before wgpu");
    }
    assert!(stdout.contains("on cpu"), "{stdout}");
    let notes: Vec<&str> = stderr.lines().filter(|l| l.starts_with("note: auto runs on cpu")).collect();
    assert_eq!(notes.len(), 1, "{stderr}");
    assert!(notes[0].contains("WGPU_ADAPTER_NAME='no-such-adapter'"), "{stderr}");
}

/// A part of the preferred adapter's name in another case picks that adapter (lavapipe's
/// "llvmpipe (LLVM ...)" here).
#[test]
fn a_part_of_an_adapters_name_picks_it() {
    let Ok(preferred) = WgpuBackend::new() else {
        return eprintln!("skipped: no wgpu adapter");
    };
    let name = preferred.name();
    // "wgpu (llvmpipe (LLVM 15.0.6, 256 bits), Vulkan)": the adapter's first word, upper case.
    let word = name.trim_start_matches("wgpu (").split([' ', ',']).next().unwrap().to_uppercase();
    let picked = WgpuBackend::named(&word).unwrap_or_else(|e| panic!("{word}: {e}"));
    assert_eq!(picked.name(), name);
    let Err(e) = WgpuBackend::named("no-such-adapter") else { panic!("no adapter is called no-such-adapter") };
    assert!(e.to_string().contains(&word.to_lowercase()), "the error lists the adapters: {e}");
}

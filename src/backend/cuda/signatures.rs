//! Every launch the encoders make, checked without a GPU against the embedded PTX: the op set
//! at every dtype (and the shapes and alignments that pick other kernels) is encoded into a
//! recording `Target`, and each recorded launch must name an `.entry` of its module's PTX whose
//! parameters match its arguments one for one (count, byte size, integer or float) and whose
//! `.maxntid` admits its block; every `.entry` must be launched by some op. A mismatch would
//! otherwise be silent: the driver does not check argument lists.
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use cudarc::driver::sys::CUdeviceptr;

use super::blas::RowMajorGemm;
use super::encode::{encode, Encoder, Kernel, Target};
use super::launch::Arg;
use super::ptx::embedded::KERNELS;
use crate::backend::*;
use crate::error::Result;
use crate::tensor::DType;

/// One parameter of a kernel, or one argument of a launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Param {
    bytes: usize,
    float: bool,
}

impl Param {
    /// A PTX parameter declaration: `.param .u64 NAME`, `.param .u64 .ptr .global .align 4 NAME`,
    /// `.param .align 8 .b8 NAME[24]`.
    fn parse(decl: &str) -> Option<Param> {
        let words: Vec<&str> = decl.split_whitespace().collect();
        let ty = words.iter().skip(1).find(|w| w.starts_with('.') && !matches!(**w, ".align" | ".ptr"))?;
        let (float, bits) = (ty.starts_with(".f"), ty[2..].parse::<usize>().ok()?);
        let count = match words.last()?.split_once('[') {
            Some((_, n)) => n.trim_end_matches(']').parse().ok()?,
            None => 1,
        };
        Some(Param { bytes: bits / 8 * count, float })
    }

    fn of(arg: &Arg) -> Param {
        match arg {
            Arg::U64(_) => Param { bytes: 8, float: false },
            Arg::F32(_) => Param { bytes: 4, float: true },
        }
    }
}

/// An `.entry` of a PTX text: its parameters and its `.maxntid` (threads per block, if set).
#[derive(Debug)]
struct Entry {
    params: Vec<Param>,
    max_threads: Option<u32>,
}

/// Every `.entry` of `ptx` by name.
fn entries(ptx: &str) -> HashMap<String, Entry> {
    let mut found = HashMap::new();
    for (_, after) in ptx.match_indices(".entry ").map(|(at, _)| ptx.split_at(at + ".entry ".len())) {
        let (name, rest) = after.split_once('(').expect("an .entry has a parameter list");
        let (list, rest) = rest.split_once(')').expect("a parameter list closes");
        let params = list.split(',').filter(|p| !p.trim().is_empty()).map(|p| Param::parse(p).unwrap_or_else(|| panic!("parameter {p:?}"))).collect();
        let directives = rest.split('{').next().unwrap_or_default();
        let max_threads = directives.split_once(".maxntid").map(|(_, dims)| {
            dims.lines().next().unwrap_or_default().split(',').map(|d| d.trim().parse::<u32>().expect(".maxntid is numbers")).product()
        });
        found.insert(name.trim().to_string(), Entry { params, max_threads });
    }
    found
}

/// A recorded launch.
#[derive(Clone, Debug)]
struct Launch {
    module: &'static str,
    function: String,
    block: u32,
    args: Vec<Arg>,
}

/// The encoders' target for these tests: every view its own buffer at a 4 GiB boundary (so a
/// view's alignment is that of its offset), launches recorded, cuBLASLt present or not.
struct Recording {
    cublaslt: bool,
    launches: RefCell<Vec<Launch>>,
}

impl Target for Recording {
    fn ptr(&self, _op: &str, _field: &str, view: &View) -> Result<CUdeviceptr> {
        Ok(((u64::from(view.buf.0) + 1) << 32) + view.offset as u64)
    }

    fn launch(&self, kernel: &Kernel) -> Result<()> {
        let launch = Launch { module: kernel.module, function: kernel.function.into(), block: kernel.block, args: kernel.args.to_vec() };
        self.launches.borrow_mut().push(launch);
        Ok(())
    }

    fn gemm(&self, _gemm: &RowMajorGemm) -> Result<bool> {
        Ok(self.cublaslt)
    }
}

/// A conv2d of `in_c` to 3 channels on 4 x 4 pixels with a `kernel` x `kernel` filter, padded
/// by (kernel - 1) / 2.
fn conv2d(v: &mut Views, t: DType, in_c: usize, kernel: usize) -> Op {
    let (out_c, pad) = (3, (kernel - 1) / 2);
    let side = 5 + 2 * pad - kernel;
    let (x, weight, out) = (v.view(in_c * 16, t), v.view(out_c * in_c * kernel * kernel, t), v.view(out_c * side * side, t));
    let bias = Some(v.view(out_c, t));
    Op::Conv2d(Conv2d { batch: 1, in_c, out_c, height: 4, width: 4, kernel, pad, x, weight, bias, out })
}

/// Views, each in a buffer of its own.
#[derive(Default)]
struct Views(u32);

impl Views {
    fn at(&mut self, offset_elems: usize, len: usize, dtype: DType) -> View {
        self.0 += 1;
        View { buf: BufId(self.0), offset: offset_elems * dtype.size(), len, dtype }
    }

    fn view(&mut self, len: usize, dtype: DType) -> View {
        self.at(0, len, dtype)
    }
}

/// Every op kind at float dtype `t`, with the variants that pick other kernels: activations,
/// accumulation, biases aligned for cuBLASLt's epilogue or not, every head dim up to 256 with
/// views aligned for attention.cu and not.
fn ops(t: DType) -> Vec<Op> {
    let mut v = Views::default();
    let mut ops = Vec::new();
    let (m, n, k) = (5, 24, 16);
    for act in Activation::ALL {
        for accumulate in [false, true] {
            // No bias, one at offset 0 (16-byte aligned), one at an odd element (never).
            for bias in [None, Some(v.view(n, t)), Some(v.at(1, n, t))] {
                let (x, w, out) = (v.view(m * k, t), v.view(n * k, t), v.view(m * n, t));
                ops.push(Op::Gemm(Gemm { m, n, k, x, x_stride: k, w, w_stride: k, bias, out, act, accumulate }));
            }
        }
        ops.push(Op::Unary(Unary { act, x: v.view(10, t), out: v.view(10, t) }));
    }
    let (batch, tokens) = (2, 3);
    let (x, w, time, out) = (v.view(batch * tokens * k, t), v.view(n * k, t), v.view(batch * n, t), v.view(batch * tokens * n, t));
    ops.push(Op::TmsaQkv(TmsaQkv { batch, tokens, k, n, x, w, bias: Some(v.view(n, t)), time, out }));
    let (rows, dim_x, dim_skip) = (4, 8, 8);
    let (x, skip, w, out) = (v.view(rows * dim_x, t), v.view(rows * dim_skip, t), v.view(n * (dim_x + dim_skip), t), v.view(rows * n, t));
    ops.push(Op::SkipConcatLinear(SkipConcatLinear { rows, dim_x, dim_skip, n, x, skip, w, bias: Some(v.view(n, t)), out }));
    ops.extend([1, 2, 3].map(|kernel| conv2d(&mut v, t, 2, kernel)));
    let (heads, q_len, kv_len) = (2, 3, 5);
    for head_dim in 1..=256 {
        let width = heads * head_dim;
        // Aligned views (attention.cu where it has the head dim), then q one element off.
        for q_offset in [0, 1] {
            let (q, kk, vv, out) = (v.at(q_offset, q_len * width, t), v.view(kv_len * width, t), v.view(kv_len * width, t), v.view(q_len * width, t));
            let bias = (head_dim == 72).then(|| v.view(heads * q_len * kv_len, t));
            let op = Attention {
                batch: 1,
                heads,
                q_len,
                kv_len,
                head_dim,
                scale: 0.125,
                q,
                q_stride: width,
                k: kk,
                v: vv,
                kv_stride: width,
                bias,
                out,
                out_stride: width,
            };
            ops.push(Op::Attention(op));
        }
    }
    let dim = 40;
    ops.push(Op::LayerNorm(LayerNorm {
        rows: 3,
        dim,
        eps: 1e-6,
        x: v.view(3 * dim, t),
        gamma: Some(v.view(dim, t)),
        beta: Some(v.view(dim, t)),
        out: v.view(3 * dim, t),
    }));
    let (shift, scale) = (PerSample { view: v.view(batch * 2 * dim, t), stride: 2 * dim }, PerSample { view: v.view(batch * dim, t), stride: dim });
    let (x, out) = (v.view(batch * tokens * dim, t), v.view(batch * tokens * dim, t));
    ops.push(Op::LayerNormModulate(LayerNormModulate { batch, tokens, dim, eps: 1e-6, x, residual: None, shift, scale, out }));
    let residual = GatedResidual { y: v.view(batch * tokens * dim, t), gate: PerSample { view: v.view(batch * dim, t), stride: dim } };
    let (x, out) = (v.view(batch * tokens * dim, t), v.view(batch * tokens * dim, t));
    ops.push(Op::LayerNormModulate(LayerNormModulate { batch, tokens, dim, eps: 1e-6, x, residual: Some(residual), shift, scale, out }));
    let (channels, spatial) = (4, 9);
    let (x, gamma, beta, out) =
        (v.view(batch * channels * spatial, t), v.view(channels, t), v.view(channels, t), v.view(batch * channels * spatial, t));
    ops.push(Op::GroupNorm(GroupNorm { batch, channels, spatial, groups: 2, eps: 1e-5, silu: true, x, gamma, beta, out }));
    ops.push(Op::Add(Add { a: v.view(12, t), b: v.view(4, t), out: v.view(12, t) }));
    let geom = PatchGeometry { batch: 1, channels: 2, height: 4, width: 4, patch: 2 };
    ops.push(Op::Patchify(Patchify { geom, x: v.view(32, t), out: v.view(32, t) }));
    ops.push(Op::Unpatchify(Unpatchify { geom, x: v.view(32, t), out: v.view(32, t) }));
    ops.push(Op::Upsample2x(Upsample2x { batch: 1, channels: 2, height: 3, width: 3, x: v.view(18, t), out: v.view(72, t) }));
    let (table, ids, out) = (v.view(5 * 4, t), v.view(3, DType::U32), v.view(3 * 4, t));
    ops.push(Op::Embedding(Embedding { rows: 3, dim: 4, table_rows: 5, table, ids, out }));
    let (time, out) = (v.view(batch, DType::F32), v.view(batch * 8, t));
    ops.push(Op::TimestepEmbedding(TimestepEmbedding { batch, dim: 8, max_period: 10000.0, t: time, out }));
    for dst in [DType::F32, DType::F16, DType::BF16] {
        ops.push(Op::Copy3d(Copy3d { dims: [2, 3, 4], src: v.view(24, t), src_strides: [12, 4, 1], dst: v.view(24, dst), dst_strides: [1, 2, 6] }));
    }
    ops
}

/// The launches of every op at every float dtype (and a u32 copy), with and without cuBLASLt.
fn launches() -> Vec<Launch> {
    let mut all_ops: Vec<Op> = [DType::F32, DType::F16, DType::BF16].into_iter().flat_map(ops).collect();
    let mut v = Views::default();
    all_ops.push(Op::Copy3d(Copy3d {
        dims: [1, 2, 3],
        src: v.view(6, DType::U32),
        src_strides: [6, 3, 1],
        dst: v.view(6, DType::U32),
        dst_strides: [6, 3, 1],
    }));
    let mut launches = Vec::new();
    for cublaslt in [true, false] {
        let recording = Recording { cublaslt, launches: RefCell::default() };
        for op in &all_ops {
            op_rules::check(op).unwrap_or_else(|e| panic!("the test's own {} is invalid: {e}", op.name()));
            encode(&Encoder::new(&recording), op).unwrap_or_else(|e| panic!("{op:?}: {e}"));
        }
        launches.extend(recording.launches.into_inner());
    }
    launches
}

/// Every embedded module's entries, by module name (None: this build embeds no kernels).
fn embedded_entries() -> Option<HashMap<&'static str, HashMap<String, Entry>>> {
    match KERNELS {
        Ok(embedded) => Some(embedded.modules.iter().map(|m| (m.name, entries(m.ptx))).collect()),
        Err(why) => {
            // CI builds with the wheels (.ci/run installs them first): there this must not skip.
            assert!(std::env::var_os("CI").is_none(), "CI must embed the kernels: {why}");
            eprintln!("skipped: this build embeds no kernels ({why})");
            None
        }
    }
}

/// One line per launch that does not match its entry.
fn mismatches(launches: &[Launch], modules: &HashMap<&str, HashMap<String, Entry>>) -> Vec<String> {
    let mut found = BTreeSet::new();
    for l in launches {
        let Some(entry) = modules.get(l.module).and_then(|m| m.get(&l.function)) else {
            found.insert(format!("{}: no .entry {} in the PTX of {}.cu", l.function, l.function, l.module));
            continue;
        };
        let args: Vec<Param> = l.args.iter().map(Param::of).collect();
        if args != entry.params {
            found.insert(format!("{}: launched with {:?}, the PTX .entry takes {:?}", l.function, args, entry.params));
        }
        if entry.max_threads.is_some_and(|max| l.block > max) {
            found.insert(format!("{}: a block of {} threads, the PTX .maxntid is {:?}", l.function, l.block, entry.max_threads));
        }
    }
    found.into_iter().collect()
}

#[test]
fn every_launch_matches_its_ptx_entry() {
    let Some(modules) = embedded_entries() else {
        return;
    };
    let launches = launches();
    let wrong = mismatches(&launches, &modules);
    assert!(wrong.is_empty(), "{} launches do not match their kernels:\n{}", wrong.len(), wrong.join("\n"));
    let launched: BTreeSet<(&str, &str)> = launches.iter().map(|l| (l.module, l.function.as_str())).collect();
    let never: Vec<String> = modules
        .iter()
        .flat_map(|(module, e)| e.keys().filter(|f| !launched.contains(&(*module, f.as_str()))).map(move |f| format!("{module}.cu {f}")))
        .collect();
    assert!(never.is_empty(), "entries no op of this test launches (add a case that does): {never:?}");
    let lists: BTreeSet<Vec<Param>> = launches.iter().map(|l| l.args.iter().map(Param::of).collect()).collect();
    eprintln!("{} launches of {} entries, {} distinct parameter lists, all match the PTX", launches.len(), launched.len(), lists.len());
}

/// The check can fail: a dropped argument, a float passed as an integer, a block above
/// `.maxntid` and a function the module lacks are each reported.
#[test]
fn a_launch_that_does_not_match_its_ptx_entry_is_reported() {
    let Some(modules) = embedded_entries() else {
        return;
    };
    let launches = launches();
    let find = |function: &str| launches.iter().find(|l| l.function == function).unwrap_or_else(|| panic!("no {function} launch")).clone();
    let mut short = find("add_f32");
    short.args.pop();
    let mut int_eps = find("layernorm_f16");
    *int_eps.args.last_mut().unwrap() = Arg::U64(0);
    let mut wide = find("attention_mma_bf16_d72");
    wide.block = 256;
    let mut elsewhere = find("unary_bf16");
    elsewhere.module = "linear";
    for (planted, expect) in [
        (short, "add_f32: launched with"),
        (int_eps, "layernorm_f16: launched with"),
        (wide, "attention_mma_bf16_d72: a block of 256 threads, the PTX .maxntid is Some(128)"),
        (elsewhere, "unary_bf16: no .entry unary_bf16 in the PTX of linear.cu"),
    ] {
        let found = mismatches(std::slice::from_ref(&planted), &modules);
        assert!(found.len() == 1 && found[0].starts_with(expect), "{planted:?}: {found:?}");
    }
}

/// conv2d's kernel by filter: a constant kernel size for 1x1 and 3x3 while in_c k^2 fits the
/// 32-bit index split, else the run-time size.
#[test]
fn conv2d_picks_its_kernel() {
    let mut v = Views::default();
    let big = (1usize << 32) / 9 + 1;
    for (t, in_c, kernel, want) in [
        (DType::F32, 2, 3, "conv2d_k3_f32"),
        (DType::F32, 2, 5, "conv2d_f32"),
        (DType::F16, 2, 1, "conv2d_k1_f16"),
        (DType::BF16, 2, 3, "conv2d_k3_bf16"),
        (DType::BF16, 2, 2, "conv2d_bf16"),
        (DType::F16, (1 << 32) / 9, 3, "conv2d_k3_f16"),
        (DType::F16, big, 3, "conv2d_f16"),
    ] {
        let recording = Recording { cublaslt: true, launches: RefCell::default() };
        encode(&Encoder::new(&recording), &conv2d(&mut v, t, in_c, kernel)).unwrap();
        let launches = recording.launches.into_inner();
        assert_eq!(launches.iter().map(|l| l.function.as_str()).collect::<Vec<_>>(), [want], "{t} in_c={in_c} kernel={kernel}");
    }
}

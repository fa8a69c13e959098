//! Every kernel family this machine runs against an f64 product, at sizes around the register
//! tile, the task block and the k slice (edges), for f32, f16 and bf16 storage, strided and
//! transposed operands (a column-major too: AMX packs a's k slices line-major), and accumulation (383 x 150 x 263 on one thread: AVX2's full 192-row
//! blocks, the second ending in a 5-row panel, over two k slices); DiT-XL/2's fc1 at its real
//! width (k 1152 over several k slices, n 4608 over many task blocks); and k 1700 (in bf16, two
//! of AMX's 768-pair line-major slices, the second short and padded).
use super::*;
use half::{bf16, f16};
use rand::{Rng, SeedableRng};

fn random(n: usize, rng: &mut impl Rng) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// a · b in f64; a [m, k] at stride lda or, transposed, [k, m]; b [k, n] at stride ldb or,
/// transposed, [n, k].
fn naive((a, lda, a_transposed): (&[f32], usize, bool), (b, ldb, b_transposed): (&[f32], usize, bool), (m, n, k): (usize, usize, usize)) -> Vec<f64> {
    let mut c = vec![0.0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            let a_ip = |p: usize| if a_transposed { a[p * lda + i] } else { a[i * lda + p] } as f64;
            c[i * n + j] = (0..k).map(|p| a_ip(p) * if b_transposed { b[j * ldb + p] } else { b[p * ldb + j] } as f64).sum();
        }
    }
    c
}

/// Which operands are stored transposed, and whether c accumulates.
#[derive(Clone, Copy, Debug)]
struct Form {
    a_transposed: bool,
    b_transposed: bool,
    accumulate: bool,
}

fn check(isa: Isa, m: usize, n: usize, k: usize, dtype: &str, form: Form) {
    let Form { a_transposed, b_transposed, accumulate } = form;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64((m * 1000 + n * 10 + k) as u64);
    // a either [m, k] or (transposed) [k, m], b either [k, n] or [n, k], each with slack.
    let (lda, ldb) = (if a_transposed { m + 2 } else { k + 3 }, if b_transposed { k + 1 } else { n + 2 });
    let a = random(if a_transposed { k * lda } else { m * lda }, &mut rng);
    let b = random(if b_transposed { n * ldb } else { k * ldb }, &mut rng);
    // Storage rounding: the reference multiplies the stored values.
    let round = |v: &[f32]| -> Vec<f32> {
        match dtype {
            "f16" => v.iter().map(|&x| f16::from_f32(x).to_f32()).collect(),
            "bf16" => v.iter().map(|&x| bf16::from_f32(x).to_f32()).collect(),
            _ => v.to_vec(),
        }
    };
    let (a, b) = (round(&a), round(&b));
    let (a16, b16): (Vec<f16>, Vec<f16>) = (a.iter().map(|&x| f16::from_f32(x)).collect(), b.iter().map(|&x| f16::from_f32(x)).collect());
    let (abf, bbf): (Vec<bf16>, Vec<bf16>) = (a.iter().map(|&x| bf16::from_f32(x)).collect(), b.iter().map(|&x| bf16::from_f32(x)).collect());
    let (ea, eb) = match dtype {
        "f16" => (Elems::F16(&a16), Elems::F16(&b16)),
        "bf16" => (Elems::Bf16(&abf), Elems::Bf16(&bbf)),
        _ => (Elems::F32(&a), Elems::F32(&b)),
    };
    let am = if a_transposed { MatRef::new(ea, k, m, lda).t() } else { MatRef::new(ea, m, k, lda) };
    let bm = if b_transposed { MatRef::new(eb, n, k, ldb).t() } else { MatRef::new(eb, k, n, ldb) };
    let start = random(m * n, &mut rng);
    let mut c = if accumulate { start.clone() } else { vec![f32::NAN; m * n] };
    let packed = PackedB::new(bm, isa, dtype == "bf16", true);
    matmul_packed(am, &packed, &mut c, accumulate, m.is_multiple_of(2));
    let want = naive((&a, lda, a_transposed), (&b, ldb, b_transposed), (m, n, k));
    for (i, (&got, &want)) in c.iter().zip(&want).enumerate() {
        let want = want + if accumulate { start[i] as f64 } else { 0.0 };
        // f32 accumulation over k terms of magnitude <= 1.
        let tol = 1e-5 * (k as f64).sqrt() + 1e-6;
        assert!((got as f64 - want).abs() <= tol, "{} {dtype} [{m},{k}]x[{k},{n}] {form:?}: c[{i}] = {got}, want {want}", isa.name());
    }
}

#[test]
fn every_kernel_matches_an_f64_product_at_its_edges() {
    for isa in Isa::available() {
        for &(m, n, k) in &[
            (1, 1, 1),
            (13, 31, 7),
            (15, 33, 9),
            (14, 32, 256),
            (29, 65, 257),
            (113, 257, 513),
            (224, 40, 3),
            (383, 150, 263),
            (5, 17, 0),
            (20, 4608, 1152),
            (37, 70, 1700),
        ] {
            for dtype in ["f32", "f16", "bf16"] {
                check(isa, m, n, k, dtype, Form { a_transposed: false, b_transposed: true, accumulate: false });
                check(isa, m, n, k, dtype, Form { a_transposed: false, b_transposed: false, accumulate: true });
                check(isa, m, n, k, dtype, Form { a_transposed: true, b_transposed: false, accumulate: false });
            }
        }
    }
}

#[test]
fn this_machine_runs_at_least_the_portable_kernel() {
    let isas = Isa::available();
    assert_eq!(isas[0], Isa::Portable);
    assert!(isas.contains(&Isa::best()));
}

#[test]
fn operands_side_by_side_multiply_as_their_concatenation() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    // An odd first width: with bf16 pairs, one packed step straddles the two operands.
    let (m, k1, k2, n) = (37, 19, 30, 45);
    let (x, skip, w) = (random(m * k1, &mut rng), random(m * k2, &mut rng), random(n * (k1 + k2), &mut rng));
    let joined: Vec<f32> = (0..m).flat_map(|i| x[i * k1..(i + 1) * k1].iter().chain(&skip[i * k2..(i + 1) * k2]).copied()).collect();
    let want = naive((&joined, k1 + k2, false), (&w, k1 + k2, true), (m, n, k1 + k2));
    let (xb, sb, wb): (Vec<bf16>, Vec<bf16>, Vec<bf16>) = (
        x.iter().map(|&v| bf16::from_f32(v)).collect(),
        skip.iter().map(|&v| bf16::from_f32(v)).collect(),
        w.iter().map(|&v| bf16::from_f32(v)).collect(),
    );
    for isa in Isa::available() {
        for bf16 in [false, true] {
            let (ex, es, ew) =
                if bf16 { (Elems::Bf16(&xb), Elems::Bf16(&sb), Elems::Bf16(&wb)) } else { (Elems::F32(&x), Elems::F32(&skip), Elems::F32(&w)) };
            let b = PackedB::new(MatRef::new(ew, n, k1 + k2, k1 + k2).t(), isa, bf16, true);
            let got = std::sync::Mutex::new(vec![f32::NAN; m * n]);
            let store = |r: usize, col: usize, seg: &mut [f32]| got.lock().unwrap()[r * n + col..][..seg.len()].copy_from_slice(seg);
            matmul_rows(&[MatRef::new(ex, m, k1, k1), MatRef::new(es, m, k2, k2)], &b, None, &store, true);
            // bf16 storage rounds every operand: 2^-8 relative each.
            let tol = if bf16 { 0.1 } else { 1e-4 };
            for (i, (&g, &w)) in got.lock().unwrap().iter().zip(&want).enumerate() {
                assert!((g as f64 - w).abs() <= tol, "{} bf16={bf16}: c[{i}] = {g}, want {w}", isa.name());
            }
        }
    }
}

//! The emulated ldmatrix and cp.async (kernels/emu/runtime.cpp, twins of kernels/ptx_ops.cuh)
//! against the PTX ISA (sections "Warp-level matrix load instruction: ldmatrix" and "cp.async"),
//! through the test kernels of kernels/emu/ptx_ops_test.cu: fragments of .x1/.x2/.x4 with and
//! without .trans from permuted row addresses, a copy landing only at the wait_group that covers
//! it, races and bounds of the copies, and the request and bank-pass counts.
use super::super::encode::Kernel;
use super::super::launch::Arg;
use super::ffi::{launch, EmuRange, EmuStats};
use crate::error::Result;

const MODULE: &str = "ptx_ops_test";

/// Runs `function` of the test module on one warp over `buffers` (16-byte aligned host memory,
/// each passed by address first, then `scalars`), the last `short` bytes of the first buffer
/// left out of its range.
fn run(function: &str, buffers: &mut [&mut [u128]], scalars: &[u64], short: u64, stats: Option<&mut EmuStats>) -> Result<()> {
    let ranges: Vec<EmuRange> = buffers
        .iter_mut()
        .enumerate()
        .map(|(i, b)| EmuRange { base: b.as_mut_ptr() as u64, bytes: (b.len() * 16) as u64 - if i == 0 { short } else { 0 } })
        .collect();
    let args: Vec<Arg> = ranges.iter().map(|r| Arg::U64(r.base)).chain(scalars.iter().map(|&s| Arg::U64(s))).collect();
    launch(MODULE, &Kernel { module: MODULE, function, grid: [1, 1, 1], block: 32, args: &args }, &ranges, stats)
}

/// Distinct, varied 16-bit values (as 16-byte rows of 8).
fn rows(n: usize, seed: u32) -> Vec<u128> {
    (0..n * 8)
        .map(|i| (i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 16)
        .collect::<Vec<u32>>()
        .chunks(8)
        .map(|c| c.iter().enumerate().fold(0u128, |row, (j, &v)| row | (u128::from(v) << (16 * j))))
        .collect()
}

fn element(row: u128, column: usize) -> u32 {
    (row >> (16 * column)) as u32 & 0xffff
}

/// The registers of every lane by the ISA: lane 8 i + r addresses row r of matrix i; lane 4 g + t
/// receives per matrix i (row g, elements 2t, 2t + 1), or with .trans (rows 2t, 2t + 1, element g),
/// the first in the lower half; registers past `num` stay 0.
fn ldmatrix_reference(input: &[u128], num: usize, trans: bool, stride: usize) -> Vec<u32> {
    let row = |matrix: usize, r: usize| input[(stride * (8 * matrix + r) + 3) % 32];
    let mut out = vec![0u32; 128];
    for lane in 0..32 {
        let (g, t) = (lane / 4, lane % 4);
        for i in 0..num {
            out[4 * lane + i] = match trans {
                false => element(row(i, g), 2 * t) | element(row(i, g), 2 * t + 1) << 16,
                true => element(row(i, 2 * t), g) | element(row(i, 2 * t + 1), g) << 16,
            };
        }
    }
    out
}

fn ldmatrix(input: &[u128], num: u64, trans: bool, stride: u64, stats: Option<&mut EmuStats>) -> Vec<u32> {
    let mut input = input.to_vec();
    let mut out = vec![0u128; 32];
    run("ldmatrix_test", &mut [&mut input, &mut out], &[num, u64::from(trans), stride, 0], 0, stats).expect("ldmatrix_test runs");
    out.iter().flat_map(|&w| (0..4).map(move |i| (w >> (32 * i)) as u32)).collect()
}

#[test]
fn ldmatrix_gives_the_isa_fragments() {
    let input = rows(32, 7);
    for num in [1, 2, 4] {
        for trans in [false, true] {
            let got = ldmatrix(&input, num as u64, trans, 5, None);
            assert_eq!(got, ldmatrix_reference(&input, num, trans, 5), "ldmatrix .x{num} trans {trans}");
        }
    }
    // Spelled out for lane 6 (g = 1, t = 2) of .x4: matrix 1 is rows 8..15, i.e. input rows
    // (5 (8 + r) + 3) % 32; its row g = 1 is input row 16, its rows 2t, 2t + 1 are 31 and 4.
    let x4 = ldmatrix(&input, 4, false, 5, None);
    assert_eq!(x4[4 * 6 + 1], element(input[16], 4) | element(input[16], 5) << 16);
    let x4t = ldmatrix(&input, 4, true, 5, None);
    assert_eq!(x4t[4 * 6 + 1], element(input[31], 1) | element(input[4], 1) << 16);
}

#[test]
fn an_ldmatrix_row_off_16_bytes_is_an_error() {
    let (mut input, mut out) = (rows(32, 1), vec![0u128; 32]);
    let e = run("ldmatrix_test", &mut [&mut input, &mut out], &[4, 0, 5, 8], 0, None).expect_err("misaligned").to_string();
    assert!(e.contains("ldmatrix row address not 16-byte aligned"), "{e}");
}

#[test]
fn an_ldmatrix_is_one_request_with_a_pass_per_eight_rows() {
    let input = rows(32, 9);
    // Rows 5 l + 3: every 8 lanes hit 8 distinct groups of 4 banks. The kernel's 16-byte row
    // store before it is one more request of 4 conflict-free passes.
    for (num, ideal) in [(1, 1), (2, 2), (4, 4)] {
        let mut s = EmuStats::default();
        ldmatrix(&input, num, false, 5, Some(&mut s));
        assert_eq!((s.shared_loads, s.shared_stores), (1, 1), ".x{num}: {s:?}");
        assert_eq!((s.shared_wavefronts, s.shared_ideal), (4 + ideal, 4 + ideal), ".x{num}: {s:?}");
    }
    // Rows 2 l + 3: two rows in each bank group per 8 lanes, 2 passes per matrix.
    let mut s = EmuStats::default();
    ldmatrix(&input, 4, true, 2, Some(&mut s));
    assert_eq!((s.shared_wavefronts, s.shared_ideal), (4 + 8, 4 + 4), "{s:?}");
}

fn words(r: u128) -> [u32; 4] {
    [0, 1, 2, 3].map(|i| (r >> (32 * i)) as u32)
}

#[test]
fn a_cp_async_lands_at_the_wait_that_covers_it() {
    let mut input = rows(96, 3);
    let mut out = vec![0u128; 192];
    run("cp_async_test", &mut [&mut input, &mut out], &[], 0, None).expect("cp_async_test runs");
    let ones = u128::MAX;
    for l in 0..32 {
        let seen = [out[l], out[32 + l], out[64 + l], out[96 + l], out[128 + l], out[160 + l]];
        let expected = [ones, ones, input[l], ones, input[32 + l], input[64 + l]];
        assert_eq!(seen.map(words), expected.map(words), "lane {l}: before any wait, after wait_group 1, 0, wait_all");
    }
    // The last copy reads in[64 + l]: with the range 8 bytes short, lane 31's runs past its end.
    let e = run("cp_async_test", &mut [&mut input, &mut out], &[], 8, None).expect_err("out of bounds").to_string();
    assert!(e.contains("runs past the end"), "{e}");
}

#[test]
fn a_cp_async_is_visible_to_other_threads_after_a_barrier_only() {
    let mut input = rows(32, 5);
    let mut out = vec![0u128; 32];
    let mut s = EmuStats::default();
    run("cp_async_visibility_test", &mut [&mut input, &mut out], &[1], 0, Some(&mut s)).expect("with the barrier");
    for l in 0..32 {
        assert_eq!(words(out[l]), words(input[(l + 1) % 32]), "lane {l}");
    }
    // A global load request and a shared store request per cp.async, then the read and the store.
    assert_eq!((s.shared_loads, s.shared_stores, s.global_requests), (1, 1, 2), "{s:?}");
    let e = run("cp_async_visibility_test", &mut [&mut input, &mut out], &[0], 0, None).expect_err("a race").to_string();
    assert!(e.contains("shared-memory race"), "{e}");
}

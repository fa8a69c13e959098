//! Byte-pair merging of one piece: the pair of adjacent symbols with the lowest rank merges
//! first, all its occurrences left to right, until no adjacent pair has a rank — the slow
//! tokenizer's loop, in O(n log n) through a heap of (rank, position).
//!
//! Popping equal ranks leftmost first merges the occurrences of one pair as that loop does,
//! because a merge's result only appears in merges of higher rank (vocab.rs checks it), so a
//! merge never makes a pair that ranks at or below its own.
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Merges `symbols` in place; `merge(a, b)` is the (rank, merged symbol) of the pair, if any.
pub fn merge(symbols: &mut Vec<u32>, merge: impl Fn(u32, u32) -> Option<(u32, u32)>) {
    let n = symbols.len();
    // A doubly linked list over the original positions; a merged symbol keeps its left position.
    let mut next: Vec<usize> = (1..=n).collect();
    let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
    let mut alive = vec![true; n];
    let mut heap = BinaryHeap::new();
    let push = |heap: &mut BinaryHeap<_>, symbols: &[u32], i: usize, j: usize| {
        if let Some((rank, _)) = merge(symbols[i], symbols[j]) {
            heap.push(Reverse((rank, i)));
        }
    };
    for i in 1..n {
        push(&mut heap, symbols, i - 1, i);
    }
    while let Some(Reverse((rank, i))) = heap.pop() {
        let j = next[i];
        // Stale: the left symbol was merged away, or the pair at i is no longer this one.
        if !alive[i] || j >= n {
            continue;
        }
        let Some((_, merged)) = merge(symbols[i], symbols[j]).filter(|&(r, _)| r == rank) else { continue };
        symbols[i] = merged;
        alive[j] = false;
        next[i] = next[j];
        if next[i] < n {
            prev[next[i]] = i;
            push(&mut heap, symbols, i, next[i]);
        }
        if prev[i] < n {
            push(&mut heap, symbols, prev[i], i);
        }
    }
    let mut i = 0;
    symbols.retain(|_| {
        i += 1;
        alive[i - 1]
    });
}

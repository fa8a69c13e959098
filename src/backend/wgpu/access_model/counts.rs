//! The counts of one workgroup's access log, on the model of NVIDIA's memory system (the CUDA
//! table's, docs/CUDA-STATUS.md): invocations in warps of 32 by local index; the accesses of a
//! warp through one expression (the n-th time for each invocation) are one request; workgroup
//! memory has 32 banks of 4-byte words and serves a request in phases of 32, 16 or 8
//! invocations for 4, 8 or 16-byte accesses, one pass per distinct word a bank must deliver;
//! storage memory moves 32-byte sectors.
use std::collections::{BTreeMap, HashMap, HashSet};

use super::memory::Access;
use super::value::Space;

const WARP: u32 = 32;
const BANKS: u64 = 32;
const SECTOR: u64 = 32;

#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Counts {
    pub workgroup_loads: u64,
    pub workgroup_stores: u64,
    /// Bytes the invocations loaded from workgroup memory, summed.
    pub workgroup_load_bytes: u64,
    /// Floating-point multiplies of every invocation (vector components and fma's counted);
    /// not from the log: `replay` fills it in.
    pub multiplies: u64,
    /// Integer divisions and remainders by non-constant divisors of every invocation (vector
    /// components counted); not from the log: `replay` fills it in.
    pub runtime_divides: u64,
    /// Storage loads of every invocation (not requests).
    pub storage_loads: u64,
    /// Passes beyond the first of every phase, over all workgroup-memory requests.
    pub extra_passes: u64,
    pub global_requests: u64,
    pub sectors: u64,
    /// The fewest sectors each request's bytes could have been moved in, summed.
    pub ideal_sectors: u64,
    /// Workgroup-memory loads (per invocation) of bytes never stored in this dispatch.
    pub unwritten_loads: u64,
    /// Per storage binding (by its number): (sectors of its requests, distinct bytes accessed).
    pub bindings: BTreeMap<u32, (u64, u64)>,
}

impl Counts {
    pub fn conflicts_per_request(&self) -> f64 {
        self.extra_passes as f64 / (self.workgroup_loads + self.workgroup_stores).max(1) as f64
    }

    /// Runtime integer divisions per storage load: address arithmetic a GPU pays per element
    /// (conv2d's im2col gather once took four per loaded pixel).
    pub fn divides_per_storage_load(&self) -> f64 {
        self.runtime_divides as f64 / self.storage_loads.max(1) as f64
    }

    /// Workgroup-memory bytes loaded per float multiply: the register tile's reuse (a 4x4
    /// tile of f32 loads two vec4s per 16 multiply-adds, 2 bytes each).
    pub fn load_bytes_per_multiply(&self) -> f64 {
        self.workgroup_load_bytes as f64 / self.multiplies.max(1) as f64
    }
}

type Request = (bool, (usize, usize, bool), Space, u32, u32);

/// The counts of `log`, every invocation's accesses.
pub(super) fn count(log: &[Access]) -> Counts {
    let mut requests: HashMap<Request, Vec<&Access>> = HashMap::new();
    for a in log {
        let workgroup = a.space == Space::Workgroup;
        requests.entry((workgroup, a.site, a.space, a.nth, a.lane / WARP)).or_default().push(a);
    }
    let loads = log.iter().filter(|a| a.space == Space::Workgroup && !a.site.2);
    let mut c = Counts {
        unwritten_loads: log.iter().filter(|a| a.unwritten).count() as u64,
        storage_loads: log.iter().filter(|a| matches!(a.space, Space::Storage(_)) && !a.site.2).count() as u64,
        workgroup_load_bytes: loads.map(|a| u64::from(a.bytes)).sum(),
        ..Counts::default()
    };
    for ((workgroup, (_, _, store), ..), accesses) in requests {
        if workgroup {
            match store {
                true => c.workgroup_stores += 1,
                false => c.workgroup_loads += 1,
            }
            c.extra_passes += extra_passes(&accesses);
        } else {
            c.global_requests += 1;
            let (sectors, ideal) = sectors(&accesses);
            c.sectors += sectors;
            c.ideal_sectors += ideal;
            if let Space::Storage(binding) = accesses[0].space {
                c.bindings.entry(binding).or_default().0 += sectors;
            }
        }
    }
    let mut touched: BTreeMap<u32, HashSet<u64>> = BTreeMap::new();
    for a in log {
        if let Space::Storage(binding) = a.space {
            touched.entry(binding).or_default().extend(a.offset..a.offset + u64::from(a.bytes));
        }
    }
    for (binding, bytes) in touched {
        c.bindings.entry(binding).or_default().1 = bytes.len() as u64;
    }
    c
}

/// Passes beyond one per phase for one workgroup-memory request.
fn extra_passes(accesses: &[&Access]) -> u64 {
    let width = accesses.iter().map(|a| a.bytes).max().unwrap_or(4);
    let per_phase = match width {
        0..=4 => 32,
        5..=8 => 16,
        _ => 8,
    };
    let mut phases: BTreeMap<u32, HashMap<u64, HashSet<u64>>> = BTreeMap::new();
    for a in accesses {
        let banks = phases.entry(a.lane % WARP / per_phase).or_default();
        for word in a.offset / 4..=(a.offset + u64::from(a.bytes.max(1)) - 1) / 4 {
            banks.entry(word % BANKS).or_default().insert(word);
        }
    }
    phases.values().map(|banks| banks.values().map(|words| words.len() as u64).max().unwrap_or(1) - 1).sum()
}

/// (sectors touched, fewest possible) for one storage request.
fn sectors(accesses: &[&Access]) -> (u64, u64) {
    let mut sectors = HashSet::new();
    let mut bytes = HashSet::new();
    for a in accesses {
        for byte in a.offset..a.offset + u64::from(a.bytes) {
            bytes.insert(byte);
            sectors.insert(byte / SECTOR);
        }
    }
    (sectors.len() as u64, (bytes.len() as u64).div_ceil(SECTOR))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(lane: u32, offset: u64, bytes: u32, space: Space) -> Access {
        Access { site: (0, 1, false), nth: 0, lane, space, offset, bytes, unwritten: false }
    }

    /// A warp reading 32 consecutive words is one pass; a column of a 32-word-wide tile puts
    /// every word in one bank (31 extra passes); 16-byte loads of consecutive vectors run in
    /// four conflict-free phases.
    #[test]
    fn bank_passes_follow_the_word_addresses() {
        let row: Vec<Access> = (0..32).map(|l| access(l, u64::from(l) * 4, 4, Space::Workgroup)).collect();
        assert_eq!(count(&row).extra_passes, 0);
        let column: Vec<Access> = (0..32).map(|l| access(l, u64::from(l) * 128, 4, Space::Workgroup)).collect();
        assert_eq!(count(&column).extra_passes, 31);
        let vec4s: Vec<Access> = (0..32).map(|l| access(l, u64::from(l) * 16, 16, Space::Workgroup)).collect();
        assert_eq!(count(&vec4s).extra_passes, 0);
        let same_word: Vec<Access> = (0..32).map(|l| access(l, 64, 4, Space::Workgroup)).collect();
        assert_eq!(count(&same_word).extra_passes, 0, "a broadcast is one pass");
    }

    /// Consecutive f32s of a warp fill 4 sectors; a stride of 64 bytes touches 32 sectors for
    /// 128 bytes (ideal 4).
    #[test]
    fn sectors_follow_the_byte_addresses() {
        let row: Vec<Access> = (0..32).map(|l| access(l, u64::from(l) * 4, 4, Space::Storage(1))).collect();
        let c = count(&row);
        assert_eq!((c.global_requests, c.sectors, c.ideal_sectors), (1, 4, 4));
        let strided: Vec<Access> = (0..32).map(|l| access(l, u64::from(l) * 64, 4, Space::Storage(1))).collect();
        let c = count(&strided);
        assert_eq!((c.sectors, c.ideal_sectors), (32, 4));
        assert_eq!(c.bindings, BTreeMap::from([(1, (32, 128))]), "32 sectors for 128 distinct bytes of binding 1");
        let twice: Vec<Access> = row.iter().chain(&row).enumerate().map(|(n, a)| Access { nth: (n / 32) as u32, ..*a }).collect();
        assert_eq!(count(&twice).bindings, BTreeMap::from([(1, (8, 128))]), "a row read twice: 8 sectors, 128 bytes");
    }
}

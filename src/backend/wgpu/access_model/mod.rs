//! The access model of the WGSL shaders (issue 18: no GPU here, and lavapipe has no
//! shared-memory banks): a dispatch as the backend lowers it (`lower`), its shader as the
//! backend specialises it, parsed by naga, and one workgroup from the middle of its grid
//! interpreted invocation by invocation (`invocation`) on zero-filled bindings of the views'
//! sizes, every workgroup-memory and storage access logged and counted (`counts`) as NVIDIA's
//! memory system serves them. `table` (a test) prints the counts at the real models' shapes
//! (`scripts/check_shaders.sh`, docs/WGSL-STATUS.md).
//!
//! It reads the shader's own index expressions, so it cannot drift from the shaders; it does
//! not model timing, caches, other vendors' bank widths or a compiler's reordering.
mod barrier;
mod counts;
mod invocation;
mod memory;
#[cfg(test)]
mod table;
mod value;

use std::sync::Mutex;

use naga::proc::Layouter;
use naga::{AddressSpace, Binding, BuiltIn};

use super::device::err;
use super::dispatch::{Dispatch, Source};
use super::shaders::specialize;
use crate::error::Result;
pub(crate) use counts::Counts;
use invocation::Invocation;
use memory::{Shared, Typed};
use value::{Pointee, Ptr, Space, Val};

/// Why a shader could not be interpreted.
#[derive(Debug)]
pub(crate) struct Fault(pub String);

/// One dispatch's counts, with its shape.
pub(crate) struct Replayed {
    pub grid: [u32; 3],
    pub workgroup_size: [u32; 3],
    pub workgroup_bytes: u64,
    /// Workgroup barriers the workgroup passed.
    pub barriers: u64,
    pub counts: Counts,
}

/// Interprets the middle workgroup of `dispatch` (its grid laid out under `limits`).
pub(super) fn replay(dispatch: &Dispatch, limits: &wgpu::Limits) -> Result<Replayed> {
    let name = dispatch.shader.name;
    let fail = |what: String| err(format!("access model of {name}: {what}"));
    let source = specialize(dispatch.shader, &dispatch.variant, &dispatch.consts, true)?;
    let module = naga::front::wgsl::parse_str(&source).map_err(|e| fail(e.emit_to_string(&source)))?;
    let mut layouter = Layouter::default();
    layouter.update(module.to_ctx()).map_err(|e| fail(format!("{e:?}")))?;
    let typed = || Typed { module: &module, layouter: &layouter };
    let entry = module.entry_points.first().ok_or_else(|| fail("no entry point".into()))?;
    let grid = dispatch.grid.counts(name, limits.max_compute_workgroups_per_dimension)?;
    let group = grid.map(|n| n / 2);

    let mut storage = Vec::new();
    let mut uniform: Vec<u8> = dispatch.params.iter().flat_map(|p| p.to_le_bytes()).collect();
    let (mut workgroup_bytes, mut private) = (0u64, Vec::new());
    let mut globals = Vec::new();
    for (_, g) in module.global_variables.iter() {
        let pointee = Pointee::Type(g.ty);
        let size = typed().size(pointee);
        let align = u64::from(layouter[g.ty].alignment.round_up(1));
        let (space, offset) = match g.space {
            AddressSpace::Uniform => {
                uniform.resize(uniform.len().max(size as usize), 0);
                (Space::Uniform, 0)
            }
            AddressSpace::Storage { .. } => {
                let binding = g.binding.as_ref().map_or(0, |b| b.binding);
                let bytes = match dispatch.slots.get(binding as usize - 1).map(|s| &s.source) {
                    Some(Source::View(v)) => v.len * v.dtype.size(),
                    Some(Source::Data(values)) => values.len() * 4,
                    Some(Source::Scratch(words)) => words * 4,
                    Some(Source::Absent) | None => 4,
                };
                storage.resize(storage.len().max(binding as usize + 1), Vec::new());
                storage[binding as usize] = vec![0u8; bytes.next_multiple_of(4)];
                (Space::Storage(binding), 0)
            }
            AddressSpace::WorkGroup => {
                let at = workgroup_bytes.next_multiple_of(align);
                workgroup_bytes = at + size;
                (Space::Workgroup, at)
            }
            AddressSpace::Private => {
                let at = (private.len() as u64).next_multiple_of(align);
                private.resize((at + size) as usize, 0);
                (Space::Invocation, at)
            }
            other => return Err(fail(format!("address space {other:?} is not modelled"))),
        };
        globals.push(Val::Ptr(Ptr { space, offset, pointee }));
    }
    let shared = Shared {
        uniform,
        storage: Mutex::new(storage),
        workgroup: Mutex::new(vec![0; workgroup_bytes as usize]),
        written: Mutex::new(vec![false; workgroup_bytes as usize]),
    };

    let size = entry.workgroup_size;
    let invocations = size.iter().product::<u32>();
    let barrier = barrier::Barrier::new(invocations as usize);
    let vec3 = |v: [u32; 3]| Val::Composite(v.map(Val::U32).to_vec());
    let logs = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..invocations)
            .map(|li| {
                let local = [li % size[0], li / size[0] % size[1], li / (size[0] * size[1])];
                let builtins = entry
                    .function
                    .arguments
                    .iter()
                    .map(|a| match a.binding {
                        Some(Binding::BuiltIn(BuiltIn::LocalInvocationIndex)) => Ok(Val::U32(li)),
                        Some(Binding::BuiltIn(BuiltIn::LocalInvocationId)) => Ok(vec3(local)),
                        Some(Binding::BuiltIn(BuiltIn::WorkGroupId)) => Ok(vec3(group)),
                        Some(Binding::BuiltIn(BuiltIn::NumWorkGroups)) => Ok(vec3(grid)),
                        Some(Binding::BuiltIn(BuiltIn::GlobalInvocationId)) => Ok(vec3([0, 1, 2].map(|d| group[d] * size[d] + local[d]))),
                        ref other => Err(Fault(format!("entry argument {other:?} is not modelled"))),
                    })
                    .collect::<std::result::Result<Vec<_>, Fault>>();
                let (globals, own, barrier, shared, module, typed) = (globals.clone(), private.clone(), &barrier, &shared, &module, typed());
                scope.spawn(move || {
                    let mut inv = Invocation::new(module, typed, shared, barrier, globals, own);
                    inv.lane = li;
                    let ran = builtins.and_then(|b| {
                        inv.builtins = b;
                        inv.run(&entry.function)
                    });
                    if ran.is_err() {
                        barrier.poison();
                    }
                    ran.map(|()| (inv.log, inv.multiplies, inv.runtime_divides))
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().expect("an interpreter thread panicked")).collect::<Vec<_>>()
    });
    let (mut log, mut multiplies, mut runtime_divides) = (Vec::new(), 0, 0);
    for l in logs {
        let (l, m, d) = l.map_err(|Fault(what)| fail(what))?;
        log.extend(l);
        multiplies += m;
        runtime_divides += d;
    }
    let counts = Counts { multiplies, runtime_divides, ..counts::count(&log) };
    Ok(Replayed { grid, workgroup_size: size, workgroup_bytes, barriers: barrier.passed(), counts })
}

#[cfg(test)]
mod tests {
    use super::super::dispatch::{Builder, Grid};
    use super::super::shaders::Shader;
    use super::*;
    use crate::backend::{BufId, View};
    use crate::tensor::DType;

    /// Two warps: each stores a column of workgroup memory (every lane in bank 0), reads a row
    /// back after the barrier (one f32 multiply each), loads consecutive f32s and stores them
    /// 64 bytes apart; the store's index divides by a uniform once and by constants twice.
    const PLANTED: Shader = Shader::inline(
        "planted",
        "struct Params { x_off: u32 }
         @group(0) @binding(0) var<uniform> p: Params;
         @group(0) @binding(1) var<storage, read_write> x: array<f32>;
         var<workgroup> tile: array<f32, 2048>;
         @compute @workgroup_size(64)
         fn main(@builtin(local_invocation_index) li: u32) {
             tile[li * 32u] = x[p.x_off + li];
             workgroupBarrier();
             let kk = 3u * 3u;
             x[p.x_off + li / max(p.x_off, 1u) * 0u + li / kk * 0u + li % 7u * 0u + li * 16u] = tile[li] * 3.0;
         }",
    );

    /// The replay finds what was planted: 31 extra passes per column store, none for the row
    /// load; 4 sectors for the consecutive load and 32 (ideal 4) for the strided store; 62
    /// loads of workgroup memory no invocation stored.
    #[test]
    fn a_planted_shader_replays_to_its_known_counts() {
        let x = View { buf: BufId(0), offset: 0, len: 1024, dtype: DType::F32 };
        let d = Builder::new(&PLANTED, Vec::new()).view("x", &x).finish(Grid::Fixed([3, 1, 1])).unwrap();
        let r = replay(&d, &Default::default()).unwrap();
        let c = r.counts;
        assert_eq!((r.grid, r.workgroup_size, r.workgroup_bytes, r.barriers), ([3, 1, 1], [64, 1, 1], 8192, 1));
        assert_eq!((c.workgroup_stores, c.workgroup_loads, c.extra_passes), (2, 2, 62));
        assert_eq!((c.workgroup_load_bytes, c.multiplies), (64 * 4, 64));
        assert_eq!((c.runtime_divides, c.storage_loads), (64, 64), "li / max(p.x_off, 1u) counts, li / kk and li % 7u do not");
        assert_eq!((c.global_requests, c.sectors, c.ideal_sectors), (4, 2 * 4 + 2 * 32, 4 * 4));
        assert_eq!(c.unwritten_loads, 62, "tile[li] was stored only for li = 0 and 32");
    }

    /// A shader the model cannot interpret is an error naming it, not a hang: the failing
    /// invocation releases the others waiting at the barrier.
    #[test]
    fn an_unmodelled_shader_is_an_error_naming_it() {
        const ATOMIC: Shader = Shader::inline(
            "atomic",
            "struct Params { x_off: u32 }
             @group(0) @binding(0) var<uniform> p: Params;
             @group(0) @binding(1) var<storage, read_write> x: array<atomic<u32>>;
             @compute @workgroup_size(64)
             fn main(@builtin(local_invocation_index) li: u32) {
                 if li == 0u { atomicAdd(&x[p.x_off], 1u); }
                 workgroupBarrier();
             }",
        );
        let x = View { buf: BufId(0), offset: 0, len: 64, dtype: DType::U32 };
        let d = Builder::new(&ATOMIC, Vec::new()).view("x", &x).finish(Grid::Fixed([1, 1, 1])).unwrap();
        let e = replay(&d, &Default::default()).err().expect("atomics are not modelled").to_string();
        assert!(e.contains("access model of atomic") && e.contains("Atomic"), "{e}");
    }
}

//! The memories one workgroup sees — the parameters, its storage bindings, workgroup memory
//! (shared by its invocations) and each invocation's own — as bytes in WGSL's host-shareable
//! layout (naga's `Layouter`), and the log of the accesses the model counts.
use std::sync::Mutex;

use naga::proc::Layouter;
use naga::{Module, Scalar, ScalarKind, TypeInner};

use super::value::{Pointee, Ptr, Res, Space, Val};
use super::Fault;

/// One load or store of workgroup or storage memory by one invocation.
#[derive(Clone, Copy, Debug)]
pub(super) struct Access {
    /// The expression that accessed (function index, expression index, store).
    pub site: (usize, usize, bool),
    /// How many times this invocation had accessed through `site` before.
    pub nth: u32,
    pub lane: u32,
    pub space: Space,
    pub offset: u64,
    pub bytes: u32,
    /// A workgroup-memory load of bytes no invocation had stored (it reads the zero
    /// initialisation WGSL promises).
    pub unwritten: bool,
}

/// What the invocations of the workgroup share.
pub(super) struct Shared {
    pub uniform: Vec<u8>,
    pub storage: Mutex<Vec<Vec<u8>>>,
    pub workgroup: Mutex<Vec<u8>>,
    /// Which workgroup-memory bytes have been stored to.
    pub written: Mutex<Vec<bool>>,
}

/// Reads and writes typed values; `access` is told of each scalar or vector moved (a vector is
/// one access, as a `vec4` load is one instruction).
pub(super) struct Typed<'a> {
    pub module: &'a Module,
    pub layouter: &'a Layouter,
}

fn scalar_bytes(v: &Val, scalar: Scalar) -> Res<Vec<u8>> {
    Ok(match (v, scalar.kind, scalar.width) {
        (Val::F32(x), ScalarKind::Float, 4) => x.to_le_bytes().to_vec(),
        (Val::F16(x), ScalarKind::Float, 2) => half::f16::from_f32(*x).to_le_bytes().to_vec(),
        (Val::U32(x), ScalarKind::Uint, 4) => x.to_le_bytes().to_vec(),
        (Val::I32(x), ScalarKind::Sint, 4) => x.to_le_bytes().to_vec(),
        (Val::Bool(b), ScalarKind::Bool, _) => vec![u8::from(*b)],
        _ => return Err(Fault(format!("storing {v:?} as {scalar:?}"))),
    })
}

fn scalar_val(bytes: &[u8], scalar: Scalar) -> Res<Val> {
    let word = |n: usize| -> [u8; 4] { std::array::from_fn(|i| if i < n { bytes[i] } else { 0 }) };
    Ok(match (scalar.kind, scalar.width) {
        (ScalarKind::Float, 4) => Val::F32(f32::from_le_bytes(word(4))),
        (ScalarKind::Float, 2) => Val::F16(half::f16::from_le_bytes([bytes[0], bytes[1]]).to_f32()),
        (ScalarKind::Uint, 4) => Val::U32(u32::from_le_bytes(word(4))),
        (ScalarKind::Sint, 4) => Val::I32(i32::from_le_bytes(word(4))),
        (ScalarKind::Bool, _) => Val::Bool(bytes[0] != 0),
        _ => return Err(Fault(format!("loading a {scalar:?}"))),
    })
}

impl Typed<'_> {
    /// The size of what `pointee` names.
    pub fn size(&self, pointee: Pointee) -> u64 {
        match pointee {
            Pointee::Type(t) => u64::from(self.layouter[t].size),
            Pointee::Component(s) => u64::from(s.width),
        }
    }

    /// The pointer to element or member `index` of what `ptr` points at.
    pub fn index(&self, ptr: Ptr, index: u32) -> Res<Ptr> {
        let Pointee::Type(t) = ptr.pointee else { return Err(Fault("indexing a scalar".into())) };
        let (offset, pointee) = match &self.module.types[t].inner {
            TypeInner::Array { base, stride, .. } => (u64::from(index) * u64::from(*stride), Pointee::Type(*base)),
            TypeInner::Vector { scalar, .. } => (u64::from(index) * u64::from(scalar.width), Pointee::Component(*scalar)),
            TypeInner::Struct { members, .. } => {
                let m = members.get(index as usize).ok_or_else(|| Fault(format!("member {index}")))?;
                (u64::from(m.offset), Pointee::Type(m.ty))
            }
            other => return Err(Fault(format!("indexing {other:?}"))),
        };
        Ok(Ptr { space: ptr.space, offset: ptr.offset + offset, pointee })
    }

    /// The value of `pointee`'s type held in `bytes`.
    pub fn decode(&self, bytes: &[u8], pointee: Pointee) -> Res<Val> {
        let t = match pointee {
            Pointee::Component(s) => return scalar_val(bytes, s),
            Pointee::Type(t) => t,
        };
        match &self.module.types[t].inner {
            TypeInner::Scalar(s) => scalar_val(bytes, *s),
            TypeInner::Vector { size, scalar } => {
                (0..*size as usize).map(|i| scalar_val(&bytes[i * scalar.width as usize..], *scalar)).collect::<Res<_>>().map(Val::Composite)
            }
            TypeInner::Array { .. } | TypeInner::Struct { .. } => {
                let n = match &self.module.types[t].inner {
                    TypeInner::Array { size: naga::ArraySize::Constant(n), .. } => n.get(),
                    TypeInner::Struct { members, .. } => members.len() as u32,
                    other => return Err(Fault(format!("loading {other:?}"))),
                };
                let base = Ptr { space: Space::Invocation, offset: 0, pointee };
                (0..n)
                    .map(|i| {
                        let p = self.index(base, i)?;
                        self.decode(&bytes[p.offset as usize..], p.pointee)
                    })
                    .collect::<Res<_>>()
                    .map(Val::Composite)
            }
            other => Err(Fault(format!("loading {other:?}"))),
        }
    }

    /// `v` as `pointee`'s bytes, written into `bytes` at `at`.
    pub fn encode(&self, v: &Val, pointee: Pointee, bytes: &mut [u8], at: usize) -> Res<()> {
        let t = match pointee {
            Pointee::Component(s) => return put(bytes, at, &scalar_bytes(v, s)?),
            Pointee::Type(t) => t,
        };
        match (&self.module.types[t].inner, v) {
            (TypeInner::Scalar(s), _) => put(bytes, at, &scalar_bytes(v, *s)?),
            (_, Val::Composite(parts)) => {
                let base = Ptr { space: Space::Invocation, offset: at as u64, pointee };
                for (i, part) in parts.iter().enumerate() {
                    let p = self.index(base, i as u32)?;
                    self.encode(part, p.pointee, bytes, p.offset as usize)?;
                }
                Ok(())
            }
            (other, _) => Err(Fault(format!("storing {v:?} as {other:?}"))),
        }
    }

    /// The zero value of `pointee`'s type.
    pub fn zero(&self, pointee: Pointee) -> Res<Val> {
        let bytes = vec![0u8; self.size(pointee) as usize];
        self.decode(&bytes, pointee)
    }
}

fn put(bytes: &mut [u8], at: usize, value: &[u8]) -> Res<()> {
    match bytes.get_mut(at..at + value.len()) {
        Some(dst) => {
            dst.copy_from_slice(value);
            Ok(())
        }
        None => Err(Fault(format!("a store at byte {at} is past the end ({} bytes)", bytes.len()))),
    }
}

/// The bytes at `offset..offset + len` of `bytes`, or None past the end (WGSL's robust access
/// then reads some in-bounds value; the model reads zeros and does not count the access).
pub(super) fn window(bytes: &[u8], offset: u64, len: u64) -> Option<&[u8]> {
    bytes.get(usize::try_from(offset).ok()?..usize::try_from(offset + len).ok()?)
}

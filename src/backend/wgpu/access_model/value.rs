//! The values of the access model's interpreter and WGSL's arithmetic on them: scalars,
//! composites (vectors, arrays, structs) and pointers into one of the workgroup's memories.
use naga::{BinaryOperator as Bin, Handle, Scalar, ScalarKind, Type, UnaryOperator};

use super::Fault;

/// Where a pointer points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Space {
    Uniform,
    /// Storage binding n.
    Storage(u32),
    Workgroup,
    /// The invocation's own memory: private globals and function locals.
    Invocation,
}

/// The type a pointer points at: a type of the module, or a vector's component.
#[derive(Clone, Copy, Debug)]
pub(super) enum Pointee {
    Type(Handle<Type>),
    Component(Scalar),
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Ptr {
    pub space: Space,
    /// Bytes into the space's memory.
    pub offset: u64,
    pub pointee: Pointee,
}

#[derive(Clone, Debug)]
pub(super) enum Val {
    Bool(bool),
    U32(u32),
    I32(i32),
    F32(f32),
    /// An f16, held widened (every f16 is an f32).
    F16(f32),
    Composite(Vec<Val>),
    Ptr(Ptr),
}

pub(super) type Res<T> = Result<T, Fault>;

/// Makes a float value of one kind (f32 or f16, rounding) from an f64.
type MakeFloat = fn(f64) -> Val;

fn fault<T>(what: impl Into<String>) -> Res<T> {
    Err(Fault(what.into()))
}

impl Val {
    pub fn u32(&self) -> Res<u32> {
        match *self {
            Val::U32(v) => Ok(v),
            Val::I32(v) => Ok(v as u32),
            ref other => fault(format!("an index or size is {other:?}")),
        }
    }

    pub fn bool(&self) -> Res<bool> {
        match *self {
            Val::Bool(b) => Ok(b),
            ref other => fault(format!("a condition is {other:?}")),
        }
    }

    pub fn ptr(&self) -> Res<Ptr> {
        match *self {
            Val::Ptr(p) => Ok(p),
            ref other => fault(format!("not a pointer: {other:?}")),
        }
    }

    /// A float scalar as f64 (for math), with a constructor of the same kind.
    fn float(&self) -> Option<(f64, MakeFloat)> {
        match *self {
            Val::F32(v) => Some((f64::from(v), |v| Val::F32(v as f32))),
            Val::F16(v) => Some((f64::from(v), |v| Val::F16(half::f16::from_f64(v).to_f32()))),
            _ => None,
        }
    }

    /// How many float scalars the value holds (a vector's components).
    pub fn floats(&self) -> u64 {
        match self {
            Val::Composite(parts) => parts.iter().map(Val::floats).sum(),
            v => u64::from(v.float().is_some()),
        }
    }

    /// The integer scalars in a value (1 for a u32 or i32, n for an integer vector).
    pub fn integers(&self) -> u64 {
        match self {
            Val::Composite(parts) => parts.iter().map(Val::integers).sum(),
            v => u64::from(matches!(v, Val::U32(_) | Val::I32(_))),
        }
    }

    /// The zero of a scalar kind and width.
    pub fn zero(scalar: Scalar) -> Res<Val> {
        Ok(match (scalar.kind, scalar.width) {
            (ScalarKind::Bool, _) => Val::Bool(false),
            (ScalarKind::Uint, 4) => Val::U32(0),
            (ScalarKind::Sint, 4) => Val::I32(0),
            (ScalarKind::Float, 4) => Val::F32(0.0),
            (ScalarKind::Float, 2) => Val::F16(0.0),
            _ => return fault(format!("scalar {scalar:?} is not modelled")),
        })
    }
}

/// `f` applied component by component (a scalar with a vector is splatted).
pub(super) fn zip(a: &Val, b: &Val, f: &dyn Fn(&Val, &Val) -> Res<Val>) -> Res<Val> {
    match (a, b) {
        (Val::Composite(x), Val::Composite(y)) => x.iter().zip(y).map(|(x, y)| zip(x, y, f)).collect::<Res<_>>().map(Val::Composite),
        (Val::Composite(x), s) => x.iter().map(|x| zip(x, s, f)).collect::<Res<_>>().map(Val::Composite),
        (s, Val::Composite(y)) => y.iter().map(|y| zip(s, y, f)).collect::<Res<_>>().map(Val::Composite),
        _ => f(a, b),
    }
}

pub(super) fn map(a: &Val, f: &dyn Fn(&Val) -> Res<Val>) -> Res<Val> {
    match a {
        Val::Composite(x) => x.iter().map(|x| map(x, f)).collect::<Res<_>>().map(Val::Composite),
        _ => f(a),
    }
}

/// WGSL's binary operators on two scalars (integers wrap; an integer divided by zero is the
/// dividend, WGSL 8.7).
pub(super) fn binary(op: Bin, a: &Val, b: &Val) -> Res<Val> {
    use Val::*;
    Ok(match (a, b) {
        (U32(x), U32(y)) => {
            let (x, y) = (*x, *y);
            match op {
                Bin::Add => U32(x.wrapping_add(y)),
                Bin::Subtract => U32(x.wrapping_sub(y)),
                Bin::Multiply => U32(x.wrapping_mul(y)),
                Bin::Divide => U32(x.checked_div(y).unwrap_or(x)),
                Bin::Modulo => U32(x.checked_rem(y).unwrap_or(0)),
                Bin::And => U32(x & y),
                Bin::InclusiveOr => U32(x | y),
                Bin::ExclusiveOr => U32(x ^ y),
                Bin::ShiftLeft => U32(x.wrapping_shl(y)),
                Bin::ShiftRight => U32(x.wrapping_shr(y)),
                _ => compare(op, x.cmp(&y))?,
            }
        }
        (I32(x), I32(y)) => {
            let (x, y) = (*x, *y);
            match op {
                Bin::Add => I32(x.wrapping_add(y)),
                Bin::Subtract => I32(x.wrapping_sub(y)),
                Bin::Multiply => I32(x.wrapping_mul(y)),
                Bin::Divide => I32(x.checked_div(y).unwrap_or(x)),
                Bin::Modulo => I32(x.checked_rem(y).unwrap_or(0)),
                Bin::And => I32(x & y),
                Bin::InclusiveOr => I32(x | y),
                Bin::ExclusiveOr => I32(x ^ y),
                _ => compare(op, x.cmp(&y))?,
            }
        }
        // Shifts take a u32 amount.
        (I32(x), U32(y)) => match op {
            Bin::ShiftLeft => I32(x.wrapping_shl(*y)),
            Bin::ShiftRight => I32(x.wrapping_shr(*y)),
            _ => return fault(format!("{op:?} of i32 and u32")),
        },
        (Bool(x), Bool(y)) => match op {
            Bin::LogicalAnd | Bin::And => Bool(*x && *y),
            Bin::LogicalOr | Bin::InclusiveOr => Bool(*x || *y),
            Bin::Equal => Bool(x == y),
            Bin::NotEqual => Bool(x != y),
            _ => return fault(format!("{op:?} of booleans")),
        },
        _ => {
            let ((x, make), (y, _)) = match (a.float(), b.float()) {
                (Some(x), Some(y)) => (x, y),
                _ => return fault(format!("{op:?} of {a:?} and {b:?}")),
            };
            match op {
                Bin::Add => make(x + y),
                Bin::Subtract => make(x - y),
                Bin::Multiply => make(x * y),
                Bin::Divide => make(x / y),
                Bin::Modulo => make(x % y),
                _ => compare(op, x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Less))?,
            }
        }
    })
}

fn compare(op: Bin, o: std::cmp::Ordering) -> Res<Val> {
    use std::cmp::Ordering::*;
    Ok(Val::Bool(match op {
        Bin::Equal => o == Equal,
        Bin::NotEqual => o != Equal,
        Bin::Less => o == Less,
        Bin::LessEqual => o != Greater,
        Bin::Greater => o == Greater,
        Bin::GreaterEqual => o != Less,
        _ => return fault(format!("operator {op:?} is not modelled")),
    }))
}

pub(super) fn unary(op: UnaryOperator, a: &Val) -> Res<Val> {
    map(a, &|a| {
        Ok(match (op, a) {
            (UnaryOperator::Negate, Val::I32(x)) => Val::I32(x.wrapping_neg()),
            (UnaryOperator::Negate, _) => match a.float() {
                Some((x, make)) => make(-x),
                None => return fault(format!("-{a:?}")),
            },
            (UnaryOperator::LogicalNot, Val::Bool(b)) => Val::Bool(!b),
            (UnaryOperator::BitwiseNot, Val::U32(x)) => Val::U32(!x),
            (UnaryOperator::BitwiseNot, Val::I32(x)) => Val::I32(!x),
            _ => return fault(format!("{op:?} of {a:?}")),
        })
    })
}

/// `a` converted (WGSL value conversion) or reinterpreted (`bitcast`) as `kind` of `width`.
pub(super) fn convert(a: &Val, kind: ScalarKind, width: Option<u8>) -> Res<Val> {
    map(a, &|a| {
        let bits = |v: &Val| -> Res<u32> {
            Ok(match *v {
                Val::U32(x) => x,
                Val::I32(x) => x as u32,
                Val::F32(x) => x.to_bits(),
                _ => return fault(format!("bitcast of {v:?}")),
            })
        };
        Ok(match (kind, width) {
            (ScalarKind::Uint, None) => Val::U32(bits(a)?),
            (ScalarKind::Sint, None) => Val::I32(bits(a)? as i32),
            (ScalarKind::Float, None) => Val::F32(f32::from_bits(bits(a)?)),
            (_, None) => return fault(format!("bitcast to {kind:?}")),
            (kind, Some(width)) => {
                let x = match *a {
                    Val::U32(x) => f64::from(x),
                    Val::I32(x) => f64::from(x),
                    Val::Bool(b) => f64::from(u8::from(b)),
                    _ => a.float().map(|f| f.0).ok_or_else(|| Fault(format!("conversion of {a:?}")))?,
                };
                match (kind, width) {
                    (ScalarKind::Uint, 4) => Val::U32(x as u32),
                    (ScalarKind::Sint, 4) => Val::I32(x as i32),
                    (ScalarKind::Float, 4) => Val::F32(x as f32),
                    (ScalarKind::Float, 2) => Val::F16(half::f16::from_f64(x).to_f32()),
                    (ScalarKind::Bool, _) => Val::Bool(x != 0.0),
                    _ => return fault(format!("conversion to {kind:?}{width}")),
                }
            }
        })
    })
}

/// A float function of one argument on every component.
pub(super) fn float_map(a: &Val, f: fn(f64) -> f64) -> Res<Val> {
    map(a, &|a| match a.float() {
        Some((x, make)) => Ok(make(f(x))),
        None => fault(format!("float function of {a:?}")),
    })
}

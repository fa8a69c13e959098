//! One invocation of a compute shader, interpreted from naga's IR: statements in order,
//! expressions when an `Emit` reaches them, `workgroupBarrier` on a barrier shared with the
//! other invocations of the workgroup (each runs on a thread of its own), and every load and
//! store of workgroup or storage memory logged for the counts.
use std::collections::HashMap;

use naga::{Block, Expression as E, Function, Handle, Literal, MathFunction as M, Module, Statement as S, TypeInner};

use super::barrier::Barrier;
use super::memory::{window, Access, Shared, Typed};
use super::value::{binary, convert, float_map, map, unary, zip, Pointee, Ptr, Res, Space, Val};
use super::Fault;

/// What a block of statements ended with.
enum Flow {
    Next,
    Break,
    Continue,
    Return(Option<Val>),
}

struct Frame<'f> {
    func: &'f Function,
    /// The function's index in the module (the entry point: usize::MAX), for the access sites.
    key: usize,
    args: Vec<Val>,
    /// Each expression's value as of its last `Emit` (or first use, for those never emitted).
    values: Vec<Option<Val>>,
    /// Each local variable's byte offset in the invocation's memory.
    locals: Vec<u64>,
}

pub(super) struct Invocation<'a> {
    pub module: &'a Module,
    pub typed: Typed<'a>,
    pub shared: &'a Shared,
    pub barrier: &'a Barrier,
    /// A pointer per global variable.
    pub globals: Vec<Val>,
    /// Private globals and function locals.
    pub own: Vec<u8>,
    pub lane: u32,
    /// The entry point's argument values (built-ins).
    pub builtins: Vec<Val>,
    nth: HashMap<(usize, usize, bool), u32>,
    pub log: Vec<Access>,
    /// Floating-point multiplies (one per vector component), fma's included.
    pub multiplies: u64,
    /// Integer divisions and remainders (per component) by a divisor that is not a constant
    /// expression: a GPU runs each as a few dozen instructions, where a constant divisor
    /// compiles to a multiply and a shift.
    pub runtime_divides: u64,
}

fn fault<T>(what: impl Into<String>) -> Res<T> {
    Err(Fault(what.into()))
}

impl<'a> Invocation<'a> {
    pub fn new(module: &'a Module, typed: Typed<'a>, shared: &'a Shared, barrier: &'a Barrier, globals: Vec<Val>, own: Vec<u8>) -> Self {
        Invocation {
            module,
            typed,
            shared,
            barrier,
            globals,
            own,
            lane: 0,
            builtins: Vec::new(),
            nth: HashMap::new(),
            log: Vec::new(),
            multiplies: 0,
            runtime_divides: 0,
        }
    }

    /// Runs `func` (the entry point's) to its end.
    pub fn run(&mut self, func: &'a Function) -> Res<()> {
        let args = self.builtins.clone();
        self.call(func, usize::MAX, args).map(|_| ())
    }

    fn call(&mut self, func: &'a Function, key: usize, args: Vec<Val>) -> Res<Option<Val>> {
        let mark = self.own.len();
        let mut frame = Frame { func, key, args, values: vec![None; func.expressions.len()], locals: Vec::new() };
        for (_, local) in func.local_variables.iter() {
            let pointee = Pointee::Type(local.ty);
            let at = self.own.len() as u64;
            self.own.resize(self.own.len() + self.typed.size(pointee) as usize, 0);
            frame.locals.push(at);
            if let Some(init) = local.init {
                let v = self.value(&mut frame, init)?;
                let mut own = std::mem::take(&mut self.own);
                let stored = self.typed.encode(&v, pointee, &mut own, at as usize);
                self.own = own;
                stored?;
            }
        }
        let flow = self.block(&mut frame, &func.body)?;
        self.own.truncate(mark);
        Ok(match flow {
            Flow::Return(v) => v,
            _ => None,
        })
    }

    fn block(&mut self, f: &mut Frame<'a>, block: &'a Block) -> Res<Flow> {
        for statement in block.iter() {
            let flow = self.statement(f, statement)?;
            if !matches!(flow, Flow::Next) {
                return Ok(flow);
            }
        }
        Ok(Flow::Next)
    }

    fn statement(&mut self, f: &mut Frame<'a>, statement: &'a S) -> Res<Flow> {
        match statement {
            S::Emit(range) => {
                for h in range.clone() {
                    let v = self.compute(f, h)?;
                    f.values[h.index()] = Some(v);
                }
            }
            S::Block(b) => return self.block(f, b),
            S::If { condition, accept, reject } => {
                let taken = if self.value(f, *condition)?.bool()? { accept } else { reject };
                return self.block(f, taken);
            }
            S::Switch { selector, cases } => {
                let s = self.value(f, *selector)?.u32()?;
                let first = cases.iter().position(|c| match c.value {
                    naga::SwitchValue::U32(v) => v == s,
                    naga::SwitchValue::I32(v) => v as u32 == s,
                    naga::SwitchValue::Default => false,
                });
                let first = first.or_else(|| cases.iter().position(|c| c.value == naga::SwitchValue::Default));
                for case in cases.iter().skip(first.unwrap_or(cases.len())) {
                    match self.block(f, &case.body)? {
                        Flow::Break => break,
                        Flow::Next if case.fall_through => continue,
                        Flow::Next => break,
                        other => return Ok(other),
                    }
                }
            }
            S::Loop { body, continuing, break_if } => loop {
                match self.block(f, body)? {
                    Flow::Break => break,
                    Flow::Return(v) => return Ok(Flow::Return(v)),
                    Flow::Next | Flow::Continue => {}
                }
                if let Flow::Return(v) = self.block(f, continuing)? {
                    return Ok(Flow::Return(v));
                }
                if let Some(c) = break_if {
                    if self.value(f, *c)?.bool()? {
                        break;
                    }
                }
            },
            S::Break => return Ok(Flow::Break),
            S::Continue => return Ok(Flow::Continue),
            S::Return { value } => {
                let v = value.map(|v| self.value(f, v)).transpose()?;
                return Ok(Flow::Return(v));
            }
            S::ControlBarrier(_) => self.barrier.wait()?,
            S::MemoryBarrier(_) => {}
            S::Store { pointer, value } => {
                let p = self.value(f, *pointer)?.ptr()?;
                let v = self.value(f, *value)?;
                self.store((f.key, pointer.index(), true), p, &v)?;
            }
            S::Call { function, arguments, result } => {
                let args = arguments.iter().map(|&a| self.value(f, a)).collect::<Res<Vec<_>>>()?;
                let module = self.module;
                let ret = self.call(&module.functions[*function], function.index(), args)?;
                if let (Some(r), Some(v)) = (result, ret) {
                    f.values[r.index()] = Some(v);
                }
            }
            other => return fault(format!("statement {other:?} is not modelled")),
        }
        Ok(Flow::Next)
    }

    /// The value of expression `h`: as last emitted, or computed now for those never emitted.
    fn value(&mut self, f: &mut Frame<'a>, h: Handle<naga::Expression>) -> Res<Val> {
        match &f.values[h.index()] {
            Some(v) => Ok(v.clone()),
            None => self.compute(f, h),
        }
    }

    fn compute(&mut self, f: &mut Frame<'a>, h: Handle<naga::Expression>) -> Res<Val> {
        Ok(match &f.func.expressions[h] {
            E::FunctionArgument(i) => f.args[*i as usize].clone(),
            E::GlobalVariable(g) => self.globals[g.index()].clone(),
            E::LocalVariable(l) => {
                Val::Ptr(Ptr { space: Space::Invocation, offset: f.locals[l.index()], pointee: Pointee::Type(f.func.local_variables[*l].ty) })
            }
            E::Load { pointer } => {
                let p = self.value(f, *pointer)?.ptr()?;
                self.load((f.key, h.index(), false), p)?
            }
            E::Access { base, index } => {
                let i = self.value(f, *index)?.u32()?;
                let base = self.value(f, *base)?;
                self.element(base, i)?
            }
            E::AccessIndex { base, index } => {
                let base = self.value(f, *base)?;
                self.element(base, *index)?
            }
            E::Compose { ty, components } => {
                let parts = components.iter().map(|&c| self.value(f, c)).collect::<Res<Vec<_>>>()?;
                match self.module.types[*ty].inner {
                    // vec4(a.xy, b.xy) and the like: components may be vectors.
                    TypeInner::Vector { .. } => Val::Composite(
                        parts
                            .into_iter()
                            .flat_map(|p| match p {
                                Val::Composite(v) => v,
                                s => vec![s],
                            })
                            .collect(),
                    ),
                    _ => Val::Composite(parts),
                }
            }
            E::Splat { size, value } => Val::Composite(vec![self.value(f, *value)?; *size as usize]),
            E::Swizzle { size, vector, pattern } => {
                let Val::Composite(v) = self.value(f, *vector)? else { return fault("swizzle of a scalar") };
                Val::Composite(pattern[..*size as usize].iter().map(|&c| v[c as usize].clone()).collect())
            }
            E::Unary { op, expr } => unary(*op, &self.value(f, *expr)?)?,
            E::Binary { op, left, right } => {
                let (a, b) = (self.value(f, *left)?, self.value(f, *right)?);
                let v = zip(&a, &b, &|a, b| binary(*op, a, b))?;
                match op {
                    naga::BinaryOperator::Multiply => self.multiplies += v.floats(),
                    naga::BinaryOperator::Divide | naga::BinaryOperator::Modulo if !constant(&f.func.expressions[*right]) => {
                        self.runtime_divides += v.integers();
                    }
                    _ => {}
                }
                v
            }
            E::Select { condition, accept, reject } => {
                let (c, a, r) = (self.value(f, *condition)?, self.value(f, *accept)?, self.value(f, *reject)?);
                match (c, a, r) {
                    (Val::Composite(c), Val::Composite(a), Val::Composite(r)) => {
                        Val::Composite(c.iter().zip(a).zip(r).map(|((c, a), r)| Ok(if c.bool()? { a } else { r })).collect::<Res<_>>()?)
                    }
                    (c, a, r) => {
                        if c.bool()? {
                            a
                        } else {
                            r
                        }
                    }
                }
            }
            E::As { expr, kind, convert: width } => convert(&self.value(f, *expr)?, *kind, *width)?,
            E::Math { fun, arg, arg1, arg2, .. } => {
                let a = self.value(f, *arg)?;
                let b = arg1.map(|x| self.value(f, x)).transpose()?;
                let c = arg2.map(|x| self.value(f, x)).transpose()?;
                let v = math(*fun, &a, b.as_ref(), c.as_ref())?;
                if *fun == M::Fma {
                    self.multiplies += v.floats();
                }
                v
            }
            E::Relational { fun, argument } => {
                let Val::Composite(v) = self.value(f, *argument)? else { return fault("all/any of a scalar") };
                let bools = v.iter().map(Val::bool).collect::<Res<Vec<_>>>()?;
                match fun {
                    naga::RelationalFunction::All => Val::Bool(bools.iter().all(|&b| b)),
                    naga::RelationalFunction::Any => Val::Bool(bools.iter().any(|&b| b)),
                    other => return fault(format!("{other:?} is not modelled")),
                }
            }
            E::ArrayLength(array) => {
                let p = self.value(f, *array)?.ptr()?;
                let Space::Storage(b) = p.space else { return fault("arrayLength outside storage") };
                let len = self.shared.storage.lock().unwrap()[b as usize].len() as u64;
                let stride = match self.typed.index(p, 1) {
                    Ok(second) => second.offset - p.offset,
                    Err(e) => return Err(e),
                };
                Val::U32(((len - p.offset) / stride) as u32)
            }
            E::Literal(l) => literal(l)?,
            E::Constant(c) => self.global_expression(self.module.constants[*c].init)?,
            E::ZeroValue(ty) => self.typed.zero(Pointee::Type(*ty))?,
            E::CallResult(_) => return fault("a call result read before the call"),
            other => return fault(format!("expression {other:?} is not modelled")),
        })
    }

    /// A constant's value (module-scope expressions: literals, composites, splats, zeros).
    fn global_expression(&self, h: Handle<naga::Expression>) -> Res<Val> {
        Ok(match &self.module.global_expressions[h] {
            E::Literal(l) => literal(l)?,
            E::Constant(c) => self.global_expression(self.module.constants[*c].init)?,
            E::ZeroValue(ty) => self.typed.zero(Pointee::Type(*ty))?,
            E::Compose { components, .. } => Val::Composite(components.iter().map(|&c| self.global_expression(c)).collect::<Res<_>>()?),
            E::Splat { size, value } => Val::Composite(vec![self.global_expression(*value)?; *size as usize]),
            other => return fault(format!("constant expression {other:?} is not modelled")),
        })
    }

    /// Element `i` of a composite value, or the pointer to element `i` of what a pointer points at.
    fn element(&self, base: Val, i: u32) -> Res<Val> {
        match base {
            Val::Ptr(p) => self.typed.index(p, i).map(Val::Ptr),
            Val::Composite(mut v) if (i as usize) < v.len() => Ok(v.swap_remove(i as usize)),
            other => fault(format!("element {i} of {other:?}")),
        }
    }

    fn record(&mut self, site: (usize, usize, bool), p: Ptr, bytes: u64) {
        let range = p.offset as usize..(p.offset + bytes) as usize;
        let unwritten = match (p.space, site.2) {
            (Space::Workgroup, false) => !self.shared.written.lock().unwrap()[range].iter().all(|&w| w),
            (Space::Workgroup, true) => {
                self.shared.written.lock().unwrap()[range].fill(true);
                false
            }
            _ => false,
        };
        let nth = self.nth.entry(site).or_insert(0);
        self.log.push(Access { site, nth: *nth, lane: self.lane, space: p.space, offset: p.offset, bytes: bytes as u32, unwritten });
        *nth += 1;
    }

    fn load(&mut self, site: (usize, usize, bool), p: Ptr) -> Res<Val> {
        let len = self.typed.size(p.pointee);
        let bytes = match p.space {
            Space::Uniform => window(&self.shared.uniform, p.offset, len).map(<[u8]>::to_vec),
            Space::Invocation => window(&self.own, p.offset, len).map(<[u8]>::to_vec),
            Space::Workgroup => window(&self.shared.workgroup.lock().unwrap(), p.offset, len).map(<[u8]>::to_vec),
            Space::Storage(b) => window(&self.shared.storage.lock().unwrap()[b as usize], p.offset, len).map(<[u8]>::to_vec),
        };
        match bytes {
            Some(bytes) => {
                if matches!(p.space, Space::Workgroup | Space::Storage(_)) {
                    self.record(site, p, len);
                }
                self.typed.decode(&bytes, p.pointee)
            }
            None => self.typed.zero(p.pointee),
        }
    }

    fn store(&mut self, site: (usize, usize, bool), p: Ptr, v: &Val) -> Res<()> {
        let len = self.typed.size(p.pointee);
        let typed = &self.typed;
        let written = match p.space {
            Space::Invocation => typed.encode(v, p.pointee, &mut self.own, p.offset as usize),
            Space::Workgroup => typed.encode(v, p.pointee, &mut self.shared.workgroup.lock().unwrap(), p.offset as usize),
            Space::Storage(b) => typed.encode(v, p.pointee, &mut self.shared.storage.lock().unwrap()[b as usize], p.offset as usize),
            Space::Uniform => return fault("a store to the parameters"),
        };
        match (written, p.space) {
            (Ok(()), Space::Workgroup | Space::Storage(_)) => {
                self.record(site, p, len);
                Ok(())
            }
            (Ok(()), _) => Ok(()),
            // Past the end of a binding: robust access discards the store.
            (Err(_), Space::Storage(_)) => Ok(()),
            (Err(e), _) => Err(e),
        }
    }
}

/// Whether a function's expression is a constant the WGSL compiler sees (naga folds constant
/// expressions, `KERNEL * KERNEL` included, into literals).
fn constant(e: &naga::Expression) -> bool {
    matches!(e, E::Literal(_) | E::Constant(_) | E::ZeroValue(_))
}

fn literal(l: &Literal) -> Res<Val> {
    Ok(match *l {
        Literal::F32(v) => Val::F32(v),
        Literal::F16(v) => Val::F16(v.to_f32()),
        Literal::U32(v) => Val::U32(v),
        Literal::I32(v) => Val::I32(v),
        Literal::Bool(v) => Val::Bool(v),
        other => return fault(format!("literal {other:?} is not modelled")),
    })
}

/// The WGSL built-in functions the shaders call.
fn math(fun: M, a: &Val, b: Option<&Val>, c: Option<&Val>) -> Res<Val> {
    let two = |f: &dyn Fn(&Val, &Val) -> Res<Val>| match b {
        Some(b) => zip(a, b, f),
        None => fault(format!("{fun:?} needs two arguments")),
    };
    let ordered = |pick_less: bool| {
        two(&move |x, y| {
            let less = matches!(binary(naga::BinaryOperator::Less, x, y)?, Val::Bool(true));
            Ok(if less == pick_less { x.clone() } else { y.clone() })
        })
    };
    Ok(match fun {
        M::Min => ordered(true)?,
        M::Max => ordered(false)?,
        M::Clamp => match c {
            Some(hi) => math(M::Min, &math(M::Max, a, b, None)?, Some(hi), None)?,
            None => return fault("clamp needs three arguments"),
        },
        M::Abs => map(a, &|x| match *x {
            Val::I32(v) => Ok(Val::I32(v.wrapping_abs())),
            Val::U32(v) => Ok(Val::U32(v)),
            _ => float_map(x, f64::abs),
        })?,
        M::Exp => float_map(a, f64::exp)?,
        M::Exp2 => float_map(a, f64::exp2)?,
        M::Log => float_map(a, f64::ln)?,
        M::Log2 => float_map(a, f64::log2)?,
        M::Sqrt => float_map(a, f64::sqrt)?,
        M::InverseSqrt => float_map(a, |x| 1.0 / x.sqrt())?,
        M::Floor => float_map(a, f64::floor)?,
        M::Ceil => float_map(a, f64::ceil)?,
        M::Trunc => float_map(a, f64::trunc)?,
        M::Round => float_map(a, f64::round_ties_even)?,
        M::Fract => float_map(a, |x| x - x.floor())?,
        M::Sin => float_map(a, f64::sin)?,
        M::Cos => float_map(a, f64::cos)?,
        M::Tanh => float_map(a, f64::tanh)?,
        M::Sign => float_map(a, |x| if x == 0.0 { 0.0 } else { x.signum() })?,
        M::Pow => two(&|x, y| binary(naga::BinaryOperator::Multiply, &float_map(x, f64::ln)?, y).and_then(|l| float_map(&l, f64::exp)))?,
        M::Fma => match c {
            Some(c) => zip(&two(&|x, y| binary(naga::BinaryOperator::Multiply, x, y))?, c, &|p, c| binary(naga::BinaryOperator::Add, p, c))?,
            None => return fault("fma needs three arguments"),
        },
        M::Dot => {
            let (Val::Composite(x), Some(Val::Composite(y))) = (a, b) else { return fault("dot of scalars") };
            let mut sum = Val::zero(naga::Scalar::F32)?;
            for (x, y) in x.iter().zip(y) {
                sum = binary(naga::BinaryOperator::Add, &binary(naga::BinaryOperator::Multiply, x, y)?, &sum)?;
            }
            sum
        }
        M::Pack2x16float => {
            let Val::Composite(v) = a else { return fault("pack2x16float of a scalar") };
            let half = |x: &Val| match *x {
                Val::F32(x) => Ok(u32::from(half::f16::from_f32(x).to_bits())),
                ref other => fault(format!("pack2x16float of {other:?}")),
            };
            Val::U32(half(&v[0])? | half(&v[1])? << 16)
        }
        M::Unpack2x16float => {
            let w = a.u32()?;
            let f = |bits: u32| Val::F32(half::f16::from_bits(bits as u16).to_f32());
            Val::Composite(vec![f(w & 0xffff), f(w >> 16)])
        }
        other => return fault(format!("built-in {other:?} is not modelled")),
    })
}

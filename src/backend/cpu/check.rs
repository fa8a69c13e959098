//! Validation of op arguments. Every misuse becomes a one-line `Error::Backend` naming the op
//! and the field; sizes are multiplied with overflow checks so absurd sizes cannot panic.
use crate::backend::{PerSample, View};
use crate::error::{Error, Result};
use crate::tensor::DType;

pub(super) fn err(msg: impl Into<String>) -> Error {
    Error::Backend { backend: "cpu".into(), msg: msg.into() }
}

/// The product of `factors`, or an error naming `what` when it overflows.
pub(super) fn product(op: &str, what: &str, factors: &[usize]) -> Result<usize> {
    factors
        .iter()
        .try_fold(1usize, |acc, &f| acc.checked_mul(f))
        .ok_or_else(|| err(format!("{op}: {what} overflows usize")))
}

/// `view` must hold exactly `want` elements; `what` spells the expected size, e.g. "m * n".
pub(super) fn len_eq(op: &str, field: &str, view: &View, want: usize, what: &str) -> Result<()> {
    if view.len == want {
        Ok(())
    } else {
        Err(err(format!("{op}: {field} has {} elements, expected {what} = {want}", view.len)))
    }
}

/// `rows` rows of `width` elements, row r starting at r * stride, must fit in `view`, and rows
/// must not overlap (stride >= width).
pub(super) fn rows_fit(op: &str, field: &str, view: &View, rows: usize, width: usize, stride: usize) -> Result<()> {
    if rows > 1 && stride < width {
        return Err(err(format!("{op}: {field} row stride {stride} is smaller than the row width {width}")));
    }
    let need = match rows {
        0 => Some(0),
        _ => (rows - 1).checked_mul(stride).and_then(|s| s.checked_add(width)),
    };
    match need {
        Some(need) if need <= view.len => Ok(()),
        _ => Err(err(format!(
            "{op}: {field} has {} elements, too few for {rows} rows of {width} at stride {stride}",
            view.len
        ))),
    }
}

/// `batch` vectors of `dim` elements, vector b starting at b * stride, must fit in the view.
pub(super) fn per_sample_fits(op: &str, field: &str, p: &PerSample, batch: usize, dim: usize) -> Result<()> {
    let need = match batch {
        0 => Some(0),
        _ => (batch - 1).checked_mul(p.stride).and_then(|s| s.checked_add(dim)),
    };
    match need {
        Some(need) if need <= p.view.len => Ok(()),
        _ => Err(err(format!(
            "{op}: {field} has {} elements, too few for {batch} vectors of {dim} at stride {}",
            p.view.len, p.stride
        ))),
    }
}

pub(super) fn float(op: &str, field: &str, view: &View) -> Result<()> {
    if view.dtype.is_float() {
        Ok(())
    } else {
        Err(err(format!("{op}: {field} must be f32, f16 or bf16, found {}", view.dtype)))
    }
}

pub(super) fn dtype(op: &str, field: &str, view: &View, want: DType) -> Result<()> {
    if view.dtype == want {
        Ok(())
    } else {
        Err(err(format!("{op}: {field} must be {want}, found {}", view.dtype)))
    }
}

/// `View::overlaps` with saturating arithmetic: views are compared before their bounds are
/// checked, and an absurd length must give an error, not an overflow panic.
fn overlaps(a: &View, b: &View) -> bool {
    let end = |v: &View| v.offset.saturating_add(v.len.saturating_mul(v.dtype.size()));
    a.buf == b.buf && a.offset < end(b) && b.offset < end(a)
}

/// The written view `out` must share no byte with any of `inputs`.
pub(super) fn disjoint(op: &str, out: (&str, &View), inputs: &[(&str, &View)]) -> Result<()> {
    match inputs.iter().find(|(_, v)| overlaps(out.1, v)) {
        None => Ok(()),
        Some((name, _)) => Err(err(format!("{op}: {} overlaps {name}", out.0))),
    }
}

/// Like `disjoint`, but `out` may also be exactly `same` (an in-place op).
pub(super) fn disjoint_or_same(op: &str, out: (&str, &View), same: (&str, &View), others: &[(&str, &View)]) -> Result<()> {
    if out.1 != same.1 && overlaps(out.1, same.1) {
        return Err(err(format!("{op}: {} partly overlaps {} (only out == {} is allowed)", out.0, same.0, same.0)));
    }
    disjoint(op, out, others)
}

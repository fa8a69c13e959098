//! The checks op arguments are made of, one question each about a view or a size: does it fit
//! its buffer, hold the expected elements, have a float dtype, overlap another view. `op_rules`
//! composes them into each op's rules; the backends' buffer tables (`table`), host writes and
//! strided copies use them directly. A failed check is a one-line message naming the op and the
//! field; each backend wraps it into `Error::Backend` under its own name. Sizes are multiplied
//! with overflow checks so absurd sizes cannot panic.
use crate::backend::{PerSample, View};
use crate::tensor::DType;

/// The outcome of a check: `Err` holds the message.
pub type Checked<T = ()> = std::result::Result<T, String>;

/// The product of `factors`, or an error naming `what` when it overflows.
pub fn product(op: &str, what: &str, factors: &[usize]) -> Checked<usize> {
    factors.iter().try_fold(1usize, |acc, &f| acc.checked_mul(f)).ok_or_else(|| format!("{op}: {what} overflows usize"))
}

/// A host write into `dst` must bring exactly its bytes.
pub fn write_len(dst: &View, bytes: usize) -> Checked {
    match dst.len.checked_mul(dst.dtype.size()) {
        Some(want) if want == bytes => Ok(()),
        _ => Err(format!("write: {bytes} bytes given for a view of {} {}", dst.len, dst.dtype)),
    }
}

/// The message for a view of a buffer the backend does not hold.
pub fn unknown_buffer(op: &str, field: &str, view: &View) -> String {
    format!("{op}: {field}: unknown buffer {} (never allocated, or freed)", view.buf.0)
}

/// `view` must start at a multiple of its element size and end inside its buffer, which holds
/// `buffer_bytes` bytes.
pub fn in_buffer(op: &str, field: &str, view: &View, buffer_bytes: usize) -> Checked {
    let size = view.dtype.size();
    if !view.offset.is_multiple_of(size) {
        return Err(format!("{op}: {field}: byte offset {} is not a multiple of the {} element size {size}", view.offset, view.dtype));
    }
    match view.len.checked_mul(size).and_then(|b| b.checked_add(view.offset)) {
        Some(end) if end <= buffer_bytes => Ok(()),
        _ => Err(format!(
            "{op}: {field}: view of {} {} at byte {} runs past the end of buffer {} ({buffer_bytes} bytes)",
            view.len, view.dtype, view.offset, view.buf.0
        )),
    }
}

/// `view` must hold exactly `want` elements; `what` spells the expected size, e.g. "m * n".
pub fn len_eq(op: &str, field: &str, view: &View, want: usize, what: &str) -> Checked {
    if view.len == want {
        Ok(())
    } else {
        Err(format!("{op}: {field} has {} elements, expected {what} = {want}", view.len))
    }
}

/// `rows` rows of `width` elements, row r starting at r * stride, must fit in `view`, and rows
/// must not overlap (stride >= width).
pub fn rows_fit(op: &str, field: &str, view: &View, rows: usize, width: usize, stride: usize) -> Checked {
    if rows > 1 && stride < width {
        return Err(format!("{op}: {field} row stride {stride} is smaller than the row width {width}"));
    }
    let need = match rows {
        0 => Some(0),
        _ => (rows - 1).checked_mul(stride).and_then(|s| s.checked_add(width)),
    };
    match need {
        Some(need) if need <= view.len => Ok(()),
        _ => Err(format!("{op}: {field} has {} elements, too few for {rows} rows of {width} at stride {stride}", view.len)),
    }
}

/// `batch` vectors of `dim` elements, vector b starting at b * stride, must fit in the view.
pub fn per_sample_fits(op: &str, field: &str, p: &PerSample, batch: usize, dim: usize) -> Checked {
    let need = match batch {
        0 => Some(0),
        _ => (batch - 1).checked_mul(p.stride).and_then(|s| s.checked_add(dim)),
    };
    match need {
        Some(need) if need <= p.view.len => Ok(()),
        _ => Err(format!("{op}: {field} has {} elements, too few for {batch} vectors of {dim} at stride {}", p.view.len, p.stride)),
    }
}

pub fn float(op: &str, field: &str, view: &View) -> Checked {
    if view.dtype.is_float() {
        Ok(())
    } else {
        Err(format!("{op}: {field} must be f32, f16 or bf16, found {}", view.dtype))
    }
}

pub fn dtype(op: &str, field: &str, view: &View, want: DType) -> Checked {
    if view.dtype == want {
        Ok(())
    } else {
        Err(format!("{op}: {field} must be {want}, found {}", view.dtype))
    }
}

/// `View::overlaps` with saturating arithmetic: views are compared before their bounds are
/// checked, and an absurd length must give an error, not an overflow panic.
fn overlaps(a: &View, b: &View) -> bool {
    let end = |v: &View| v.offset.saturating_add(v.len.saturating_mul(v.dtype.size()));
    a.buf == b.buf && a.offset < end(b) && b.offset < end(a)
}

/// The written view `out` must share no byte with any of `inputs`.
pub fn disjoint(op: &str, out: (&str, &View), inputs: &[(&str, &View)]) -> Checked {
    match inputs.iter().find(|(_, v)| overlaps(out.1, v)) {
        None => Ok(()),
        Some((name, _)) => Err(format!("{op}: {} overlaps {name}", out.0)),
    }
}

/// Like `disjoint`, but `out` may also be exactly `same` (an in-place op).
pub fn disjoint_or_same(op: &str, out: (&str, &View), same: (&str, &View), others: &[(&str, &View)]) -> Checked {
    if out.1 != same.1 && overlaps(out.1, same.1) {
        return Err(format!("{op}: {} partly overlaps {} (only out == {} is allowed)", out.0, same.0, same.0));
    }
    disjoint(op, out, others)
}

/// Offset of the last element addressed by `dims` and `strides`, if every dim is non-zero.
pub fn last_index(dims: [usize; 3], strides: [usize; 3]) -> Option<usize> {
    dims.iter().zip(strides).try_fold(0usize, |acc, (&d, s)| (d.checked_sub(1)?).checked_mul(s)?.checked_add(acc))
}

/// A sufficient test that (i, j, k) -> i s0 + j s1 + k s2 is one-to-one: taking the dims that
/// vary by increasing stride, each stride exceeds the largest offset the smaller ones reach.
pub fn writes_each_element_once(dims: [usize; 3], strides: [usize; 3]) -> bool {
    let mut varying: Vec<(usize, usize)> = strides.into_iter().zip(dims).filter(|&(_, d)| d > 1).collect();
    varying.sort_unstable();
    let mut reach = 0usize;
    varying.into_iter().all(|(stride, dim)| {
        let fits = stride > reach;
        reach = reach.saturating_add(stride.saturating_mul(dim - 1));
        fits
    })
}

//! f16 storage on adapters without SHADER_F16 (DX12 on FXC, many WebGPU adapters): the same
//! bytes as f16 storage, read as an `array<u32>` of packed pairs (element i is half i & 1 of
//! word i >> 1, the low half first, as `unpack2x16float` takes it), so buffers, views and host
//! transfers are unchanged and only the shader text differs.
//!
//! `pack_f16` rewrites an op shader whose storage aliases are f16: each such binding becomes a
//! u32 array, each read `x[i]` a call `x_packed_load(i)` (an f32), each store `x[i] = v;` a call
//! `x_packed_store(i, v);`, and the alias stays f32, so the shader's arithmetic (f32 already)
//! is untouched and values round to f16 only where the native variant's `elem(v)` rounds them,
//! in `pack2x16float`.
//!
//! A store writes 16 bits of a 32-bit word whose other half may be another invocation's
//! element (any op whose output is not laid out in pairs per invocation: a GEMM with odd n or
//! an odd offset, conv2d across a sample edge, copy3d's strides, embedding's row blocks) or
//! another view's. A plain read-modify-write of the word would lose the neighbour's store, and
//! making every invocation own whole words would need a different store pattern in every
//! shader. So a stored binding is an `array<atomic<u32>>` and a store is two atomics on its own
//! half only, `atomicAnd` clearing it then `atomicOr` setting it: neither touches the other
//! half, so they commute with the neighbour's pair in any interleaving. Only stored bindings
//! are atomic; read-only ones are plain `array<u32>` with plain loads.
use std::collections::BTreeSet;

use super::device::err;
use crate::error::Result;

/// `source` (an op shader's own text, comments dropped) with every `var<storage, read_write>
/// NAME: array<ALIAS>;` whose ALIAS is in `aliases` stored as packed u32 pairs, and the
/// helpers that read and write them appended. `shader` names it in errors.
pub(super) fn pack_f16(shader: &str, source: &str, aliases: &[&str]) -> Result<String> {
    let code: String = source.lines().map(|l| l.split("//").next().unwrap_or("")).flat_map(|l| [l, "\n"]).collect();
    let names = packed_bindings(&code, aliases);
    if names.is_empty() {
        return Err(err(format!("shader {shader}: no storage array of {aliases:?} to pack")));
    }
    let mut stored = BTreeSet::new();
    let body = rewrite(shader, &code, &names, &mut stored)?;
    let mut out = String::with_capacity(body.len() + 512 * names.len());
    for line in body.lines() {
        match names.iter().find_map(|n| declares(line, n).map(|alias| (n, alias))) {
            Some((n, alias)) => {
                let word = if stored.contains(n) { "array<atomic<u32>>" } else { "array<u32>" };
                out += &line.replacen(&format!("array<{alias}>"), word, 1);
            }
            None => out += line,
        }
        out.push('\n');
    }
    for n in &names {
        out += &helpers(n, stored.contains(n));
    }
    Ok(out)
}

/// The alias of `line` if it declares storage binding `name` as `array<alias>`.
fn declares<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let rest = line.split_once("var<storage, read_write>")?.1.trim_start();
    let rest = rest.strip_prefix(name)?.trim_start().strip_prefix(':')?.trim_start();
    rest.strip_prefix("array<")?.split_once('>').map(|(alias, _)| alias.trim())
}

/// The names of the storage bindings declared as arrays of one of `aliases`.
fn packed_bindings(code: &str, aliases: &[&str]) -> Vec<String> {
    let declared = code.lines().filter_map(|l| {
        let rest = l.split_once("var<storage, read_write>")?.1.trim_start();
        let name = rest.split(':').next()?.trim();
        aliases.contains(&declares(l, name)?).then(|| name.to_string())
    });
    declared.collect()
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The index of the first `until` (`]`, or `;` ending a statement) from `from` on outside any
/// bracket or parenthesis opened after `from`; None if a bracket closes one opened before.
fn close(code: &[u8], from: usize, until: u8) -> Option<usize> {
    let mut depth = 0u32;
    for (i, &b) in code.iter().enumerate().skip(from) {
        match b {
            b'[' | b'(' => depth += 1,
            b']' | b')' if depth == 0 => return (b == until).then_some(i),
            b']' | b')' => depth -= 1,
            b';' if depth == 0 => return (b == until).then_some(i),
            _ => {}
        }
    }
    None
}

/// `code` with every access to an array of `names` made a helper call; the names stored to
/// are added to `stored`.
fn rewrite(shader: &str, code: &str, names: &[String], stored: &mut BTreeSet<String>) -> Result<String> {
    let bytes = code.as_bytes();
    let unbalanced = || err(format!("shader {shader}: unbalanced brackets around a packed f16 access"));
    let mut out = String::with_capacity(code.len());
    let mut i = 0;
    while i < bytes.len() {
        let starts_ident = is_ident(bytes[i]) && (i == 0 || !(is_ident(bytes[i - 1]) || bytes[i - 1] == b'.'));
        if !starts_ident {
            out.push(bytes[i] as char);
            i += 1;
            continue;
        }
        let end = (i..bytes.len()).find(|&j| !is_ident(bytes[j])).unwrap_or(bytes.len());
        let name = &code[i..end];
        if bytes.get(end) != Some(&b'[') || !names.iter().any(|n| n == name) {
            out += name;
            i = end;
            continue;
        }
        let close_at = close(bytes, end + 1, b']').ok_or_else(unbalanced)?;
        let index = rewrite(shader, &code[end + 1..close_at], names, stored)?;
        let after = code[close_at + 1..].trim_start();
        let assign_at = close_at + 1 + (code.len() - close_at - 1 - after.len());
        if ["+=", "-=", "*=", "/="].iter().any(|op| after.starts_with(op)) {
            return Err(err(format!("shader {shader}: a compound assignment to {name}[..] cannot be packed; write `{name}[i] = ...`")));
        }
        if after.starts_with('=') && !after.starts_with("==") {
            let value_end = close(bytes, assign_at + 1, b';').ok_or_else(unbalanced)?;
            let value = rewrite(shader, code[assign_at + 1..value_end].trim(), names, stored)?;
            out += &format!("{name}_packed_store({index}, {value})");
            stored.insert(name.to_string());
            i = value_end;
        } else {
            out += &format!("{name}_packed_load({index})");
            i = close_at + 1;
        }
    }
    Ok(out)
}

/// The load (and, if stored, store) helper of binding `name`.
fn helpers(name: &str, stored: bool) -> String {
    let word = if stored { format!("atomicLoad(&{name}[i >> 1u])") } else { format!("{name}[i >> 1u]") };
    let load = format!("fn {name}_packed_load(i: u32) -> f32 {{\n    return unpack2x16float({word})[i & 1u];\n}}\n");
    if !stored {
        return load;
    }
    // Clears this element's half, then sets it: two atomics on 16 bits each (module comment).
    let store = format!(
        "fn {name}_packed_store(i: u32, value: f32) {{\n    let shift = 16u * (i & 1u);\n    \
         atomicAnd(&{name}[i >> 1u], ~(0xffffu << shift));\n    \
         atomicOr(&{name}[i >> 1u], (pack2x16float(vec2<f32>(value, 0.0)) & 0xffffu) << shift);\n}}\n"
    );
    load + &store
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADD: &str = "alias elem = f32;\n@group(0) @binding(1) var<storage, read_write> a: array<elem>;\n\
        @group(0) @binding(2) var<storage, read_write> b: array<elem>;\n\
        @group(0) @binding(3) var<storage, read_write> ids: array<u32>;\n\
        fn element(i: u32) {\n    // a[i] = b[i]; is a comment\n    a[p.a_off + i] = elem(f32(a[i]) + f32(b[ids[i] % 2u]));\n    let x = b[a_len[0]] == 1.0;\n}\n";

    /// Stores become atomic helper calls on a stored binding, loads plain ones on a read-only
    /// one, other arrays and member accesses stay, comments go.
    #[test]
    fn accesses_become_helper_calls() {
        let out = pack_f16("add", ADD, &["elem"]).unwrap();
        assert!(out.contains("var<storage, read_write> a: array<atomic<u32>>;"), "{out}");
        assert!(out.contains("var<storage, read_write> b: array<u32>;"), "{out}");
        assert!(out.contains("var<storage, read_write> ids: array<u32>;"), "{out}");
        assert!(out.contains("a_packed_store(p.a_off + i, elem(f32(a_packed_load(i)) + f32(b_packed_load(ids[i] % 2u))));"), "{out}");
        assert!(out.contains("b_packed_load(a_len[0]) == 1.0"), "{out}");
        assert!(out.contains("atomicLoad(&a[i >> 1u])") && !out.contains("atomicLoad(&b"), "{out}");
        assert!(!out.contains("is a comment"), "{out}");
    }

    /// What cannot be packed is a one-line error naming the shader.
    #[test]
    fn unpackable_shaders_are_errors() {
        let compound = "@group(0) @binding(1) var<storage, read_write> x: array<elem>;\nfn f() { x[0] += 1.0; }";
        assert!(pack_f16("c", compound, &["elem"]).unwrap_err().to_string().contains("shader c: a compound assignment to x"));
        let unbalanced = "@group(0) @binding(1) var<storage, read_write> x: array<elem>;\nfn f() { let y = x[(0]; }";
        assert!(pack_f16("u", unbalanced, &["elem"]).unwrap_err().to_string().contains("shader u: unbalanced"));
        assert!(pack_f16("n", "fn f() {}", &["elem"]).unwrap_err().to_string().contains("shader n: no storage array"));
    }
}

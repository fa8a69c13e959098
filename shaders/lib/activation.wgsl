// Elementwise activations in f32. Codes (Params.act) as `activation_code` in
// src/backend/wgpu/lower/mod.rs: 0 none, 1 GELU-tanh, 2 GELU-erf, 3 SiLU,
// 4 quick GELU.

fn activate(act: u32, x: f32) -> f32 {
    switch act {
        case 1u: { return gelu_tanh(x); }
        case 2u: { return gelu_erf(x); }
        case 3u: { return silu(x); }
        case 4u: { return quick_gelu(x); }
        default: { return x; }
    }
}

fn silu(x: f32) -> f32 {
    return x / (1.0 + exp(-x));
}

// x sigmoid(1.702 x) (CLIP), written as SiLU is.
fn quick_gelu(x: f32) -> f32 {
    return x / (1.0 + exp(-1.702 * x));
}

// 0.5 x (1 + tanh u), u = sqrt(2/pi) (x + 0.044715 x^3), written x / (1 + e^{-2u}): the same
// function ((1 + tanh u) / 2 = sigmoid(2u)) with one exp and no overflow to inf/inf.
fn gelu_tanh(x: f32) -> f32 {
    let u = 0.7978846 * (x + 0.044715 * x * x * x);
    return x / (1.0 + exp(-2.0 * u));
}

// x Phi(x), Phi(x) = erfc(-x / sqrt 2) / 2 with the Chebyshev erfc of Numerical Recipes
// (erfcc, fractional error below 1.2e-7), so the left tail keeps its relative accuracy.
fn gelu_erf(x: f32) -> f32 {
    let z = -x * 0.70710678;
    let a = abs(z);
    let t = 1.0 / (1.0 + 0.5 * a);
    let poly = -a * a - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
        + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
        + t * (-0.82215223 + t * 0.17087277))))))));
    let erfc_a = t * exp(poly);
    let erfc_z = select(2.0 - erfc_a, erfc_a, z >= 0.0);
    return x * 0.5 * erfc_z;
}

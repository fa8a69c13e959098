//! Elementwise activations in f32, over the vectorised `math::exp`.
use super::math::exp;
use super::simd;
use crate::backend::Activation;

/// sqrt(2 / pi), the tanh-GELU constant.
const SQRT_2_OVER_PI: f32 = 0.797_884_6;

pub(super) fn apply(act: Activation, values: &mut [f32]) {
    simd::vectorized(|| match act {
        Activation::None => {}
        Activation::GeluTanh => values.iter_mut().for_each(|v| *v = gelu_tanh(*v)),
        Activation::GeluErf => values.iter_mut().for_each(|v| *v = gelu_erf(*v)),
        Activation::Silu => values.iter_mut().for_each(|v| *v = silu(*v)),
        Activation::QuickGelu => values.iter_mut().for_each(|v| *v = quick_gelu(*v)),
    })
}

/// 0.5 x (1 + tanh u) with u = sqrt(2/pi) (x + 0.044715 x^3), computed as x / (1 + e^{-2u})
/// (the same function: (1 + tanh u) / 2 = sigmoid(2u)), so it needs one vectorised exp.
#[inline(always)]
fn gelu_tanh(x: f32) -> f32 {
    let u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
    x / (1.0 + exp(-2.0 * u))
}

#[inline(always)]
fn gelu_erf(x: f32) -> f32 {
    x * normal_cdf(x)
}

#[inline(always)]
pub(super) fn silu(x: f32) -> f32 {
    x / (1.0 + exp(-x))
}

/// x sigmoid(1.702 x), written x / (1 + e^{-1.702 x}) as SiLU is.
#[inline(always)]
fn quick_gelu(x: f32) -> f32 {
    x / (1.0 + exp(-1.702 * x))
}

/// Phi(x) = erfc(-x / sqrt 2) / 2, with the Chebyshev erfc of Numerical Recipes (erfcc,
/// fractional error below 1.2e-7 everywhere), so the left tail keeps its relative accuracy.
#[inline(always)]
fn normal_cdf(x: f32) -> f32 {
    let z = -x * std::f32::consts::FRAC_1_SQRT_2;
    let a = z.abs();
    let t = 1.0 / (1.0 + 0.5 * a);
    let poly = -a * a - 1.265_512_2
        + t * (1.000_023_7
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06 + t * (0.278_868_07 + t * (-1.135_204 + t * (1.488_515_9 + t * (-0.822_152_2 + t * 0.170_872_77))))))));
    let erfc_a = t * exp(poly);
    let erfc_z = if z >= 0.0 { erfc_a } else { 2.0 - erfc_a };
    0.5 * erfc_z
}

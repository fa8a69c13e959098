//! f32 elementary functions written branch-free, so loops over slices vectorise (libm's are
//! scalar calls, and dominated the activation and softmax loops).

/// 1.5 * 2^23: adding and subtracting it rounds an f32 of magnitude < 2^22 to an integer.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// e^x with a relative error of about 1 ulp (Cephes expf: 2^n e^r, |r| <= ln 2 / 2, degree-6
/// polynomial). Arguments are clamped to [-87, 88], the normal range: e^x below e^-87 is
/// returned as ~1.6e-38 rather than a subnormal or 0, above e^88 as ~1.7e38. NaN stays NaN.
#[inline(always)]
pub(super) fn exp(x: f32) -> f32 {
    let clamped = x.clamp(-87.0, 88.0);
    let shifted = clamped * std::f32::consts::LOG2_E + ROUND_MAGIC;
    let n = shifted - ROUND_MAGIC;
    // ln 2 split in two so that n * LN2_HI is exact.
    let r = clamped - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let e_r = p * r * r + r + 1.0;
    // `shifted` has the bits of ROUND_MAGIC plus n, so 2^n's exponent field n + 127 is an
    // integer subtraction away (vectorises, unlike a float-to-int cast).
    let two_n = f32::from_bits(shifted.to_bits().wrapping_sub(ROUND_MAGIC.to_bits() - 127) << 23);
    if x.is_nan() {
        x
    } else {
        e_r * two_n
    }
}

#[cfg(test)]
mod tests {
    use super::exp;

    #[test]
    fn exp_is_within_two_ulp() {
        for i in -870_000..=880_000 {
            let x = i as f32 * 1e-4;
            let want = f64::from(x).exp();
            let err = (f64::from(exp(x)) - want).abs() / want;
            assert!(err < 2.0 * f64::from(f32::EPSILON), "exp({x}) = {} vs {want}: rel err {err:e}", exp(x));
        }
        assert!(exp(f32::NAN).is_nan());
        assert_eq!(exp(f32::NEG_INFINITY), exp(-87.0));
    }
}

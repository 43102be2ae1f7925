//! Error measures that never hide a non-finite value. `f32::max` drops a NaN (`1.0f32.max(NaN)`
//! is 1), so a "largest difference" folded with it passes a kernel that emits NaN in some
//! elements. Here a NaN difference is the worst one: `worst(...) <= tolerance` is false when any
//! element is NaN, and an infinity is over every tolerance.

/// The largest of `errs` (0 when there are none); NaN if any of them is NaN.
pub fn worst(errs: impl IntoIterator<Item = f32>) -> f32 {
    errs.into_iter().fold(0.0, |m, e| {
        if e.is_nan() || m.is_nan() {
            f32::NAN
        } else {
            m.max(e)
        }
    })
}

/// Largest |a − b| relative to the largest |b| (at least 1e-6); NaN if an element of `a` is not
/// finite or the lengths differ.
pub fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    if a.iter().any(|x| !x.is_finite()) || a.len() != b.len() {
        return f32::NAN;
    }
    let scale = worst(b.iter().map(|x| x.abs())).max(1e-6);
    worst(a.iter().zip(b).map(|(x, y)| (x - y).abs() / scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nan_anywhere_is_the_worst_error() {
        assert_eq!(worst([0.1, 0.3, 0.2]), 0.3);
        assert_eq!(worst([]), 0.0);
        for at in 0..3 {
            let mut e = [0.1f32, 0.3, 0.2];
            e[at] = f32::NAN;
            assert!(worst(e).is_nan(), "NaN at {at} dropped");
            let passes = worst(e) <= 1.0;
            assert!(!passes, "a tolerance check passes a NaN");
        }
        assert_eq!(worst([0.1, f32::INFINITY]), f32::INFINITY);
    }

    #[test]
    fn rel_err_fails_on_a_non_finite_element_of_either_side() {
        let b = [1.0f32, -2.0, 4.0];
        assert_eq!(rel_err(&[1.0, -2.0, 4.0], &b), 0.0);
        assert_eq!(rel_err(&[1.0, -2.0, 3.0], &b), 0.25);
        assert!(rel_err(&[1.0, f32::NAN, 4.0], &b).is_nan());
        assert!(rel_err(&[1.0, f32::INFINITY, 4.0], &b).is_nan());
        // a NaN in the reference makes its difference NaN, and the scale too
        assert!(rel_err(&b, &[1.0, f32::NAN, 4.0]).is_nan());
        assert!(rel_err(&b, &[1.0, -2.0]).is_nan());
    }
}

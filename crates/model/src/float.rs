//! Float formatting and parsing that match Go's `strconv`, as Prometheus uses it.
//!
//! Two formats matter to users:
//! * the HTTP API prints sample values as Prometheus' `util/jsonutil.MarshalValue` does:
//!   Go's `'f'` format with the shortest exact digits, switching to `'e'` when the magnitude
//!   is below 1e-6 or at least 1e21 (`"0.5"`, `"1e-07"`, `"1e+21"`);
//! * exposition text and PromQL's own printing use Go's `'g'` format with the shortest digits
//!   (`strconv.FormatFloat(v, 'g', -1, 64)`): exponent form when the decimal exponent is below
//!   -4 or at least 6, as in node_exporter's `8.253063168e+09`; see [`format_go_float`].
//!
//! Both print infinities as `+Inf`/`-Inf` and NaN as `NaN`.

/// The shortest decimal digits that round-trip `v` (finite, non-zero, positive) and the decimal
/// exponent `dp` such that `v = 0.d1d2d3... × 10^dp`.
fn shortest_digits(v: f64) -> (String, i32) {
    // Rust's `{:e}` prints the shortest round-trip digits, like Go's shortest mode.
    let s = format!("{v:e}");
    let (mantissa, exp) = s.split_once('e').expect("`{:e}` output always has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` exponent is an integer");
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    (digits, exp + 1)
}

fn push_special(out: &mut String, v: f64) -> bool {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        return false;
    }
    true
}

/// Go's `%e` layout for shortest digits: `d.ddde±XX` with at least two exponent digits.
fn push_exponent_form(out: &mut String, negative: bool, digits: &str, dp: i32) {
    if negative {
        out.push('-');
    }
    out.push_str(&digits[..1]);
    if digits.len() > 1 {
        out.push('.');
        out.push_str(&digits[1..]);
    }
    let exp = dp - 1;
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    let abs = exp.unsigned_abs();
    if abs < 10 {
        out.push('0');
    }
    out.push_str(&abs.to_string());
}

/// Formats `v` as Prometheus' HTTP API does for sample values (without the JSON quotes).
pub fn format_api_float(v: f64) -> String {
    let mut out = String::new();
    if push_special(&mut out, v) {
        return out;
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let (digits, dp) = shortest_digits(abs);
        push_exponent_form(&mut out, v.is_sign_negative(), &digits, dp);
        out
    } else {
        // Rust's Display prints the shortest round-trip digits in plain decimal, as Go's 'f'
        // with precision -1 does (including "-0" for negative zero).
        format!("{v}")
    }
}

/// Formats `v` as Go's `strconv.FormatFloat(v, 'f', -1, 64)`: shortest round-trip digits,
/// never an exponent (`1.5e301` prints all 302 digits). Upstream's API prints scalar results
/// this way, unlike sample values ([`format_api_float`]).
pub fn format_plain_float(v: f64) -> String {
    let mut out = String::new();
    if push_special(&mut out, v) {
        return out;
    }
    // Rust's Display is the shortest round-trip digits in plain decimal, "-0" included.
    format!("{v}")
}

/// Formats `v` as Go's `strconv.FormatFloat(v, 'g', -1, 64)`, with Prometheus' spelling of
/// the special values. In shortest mode Go decides between plain and exponent form with a
/// precision of 6: exponent form when the decimal exponent is below -4 or at least 6.
pub fn format_go_float(v: f64) -> String {
    let mut out = String::new();
    if push_special(&mut out, v) {
        return out;
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let (digits, dp) = shortest_digits(v.abs());
    let exp = dp - 1;
    if !(-4..6).contains(&exp) {
        push_exponent_form(&mut out, v.is_sign_negative(), &digits, dp);
        out
    } else {
        format!("{v}")
    }
}

/// Parses a float as Go's `strconv.ParseFloat(s, 64)` accepts it for Prometheus' purposes:
/// decimal and exponent forms, a leading sign, and `Inf`/`Infinity`/`NaN` in any case.
/// Returns `None` for anything else.
pub fn parse_go_float(s: &str) -> Option<f64> {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let negative = s.starts_with('-');
    if unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity") {
        return Some(if negative { f64::NEG_INFINITY } else { f64::INFINITY });
    }
    if unsigned.eq_ignore_ascii_case("nan") {
        return Some(f64::NAN);
    }
    // The sign is handled here, so Rust's parser never sees a second one ("+-1" is rejected).
    if !unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let v: f64 = unsigned.parse().ok()?;
    Some(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_format_matches_prometheus() {
        for (v, s) in [
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (0.5, "0.5"),
            (-2.25, "-2.25"),
            (1e-6, "0.000001"),
            (1e-7, "1e-07"),
            (1.5e-7, "1.5e-07"),
            (123456789.0, "123456789"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (-1.5e300, "-1.5e+300"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(format_api_float(v), s, "{v:e}");
        }
    }

    #[test]
    fn go_g_format_matches_strconv() {
        for (v, s) in [
            (0.0, "0"),
            (1.0, "1"),
            (100000.0, "100000"),
            (1000000.0, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (8253063168.0, "8.253063168e+09"),
            (123456.5, "123456.5"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-10, "1.5e-10"),
            (-3.0e100, "-3e+100"),
            (f64::INFINITY, "+Inf"),
        ] {
            assert_eq!(format_go_float(v), s, "{v:e}");
        }
    }

    #[test]
    fn parses_go_spellings() {
        assert_eq!(parse_go_float("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_go_float("-inf"), Some(f64::NEG_INFINITY));
        assert!(parse_go_float("NaN").unwrap().is_nan());
        assert_eq!(parse_go_float("1e3"), Some(1000.0));
        assert_eq!(parse_go_float("-.5"), Some(-0.5));
        assert_eq!(parse_go_float("+2"), Some(2.0));
        assert_eq!(parse_go_float(""), None);
        assert_eq!(parse_go_float("abc"), None);
        assert_eq!(parse_go_float("1,5"), None);
    }
}

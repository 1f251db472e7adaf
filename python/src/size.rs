//! Sizes given as an int (bytes) or a human string: `"4GiB"`, `"512M"`, `"1.5GB"`.

use pyo3::prelude::*;

use crate::errors::value_error;

/// A size argument: a non-negative int, or a string as [`parse_size`] reads it.
pub fn size_arg(x: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    if let Ok(n) = x.extract::<u64>() {
        return Ok(n);
    }
    if let Ok(s) = x.extract::<String>() {
        return parse_size(&s).map_err(|e| value_error(format!("{what}: {e}")));
    }
    Err(value_error(format!(
        "{what} must be a number of bytes or a string such as \"512MiB\", not {x}"
    )))
}

/// Parses `4GiB`, `512M`, `1.5GB`, `1000000`: a number (decimals allowed if the result is a
/// whole number of bytes) and an optional unit: `K M G T` and `KiB MiB GiB TiB` are powers of
/// 1024, `KB MB GB TB` powers of 1000 — the rules of the `outcore` command line.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num = num.replace('_', "");
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        u => {
            return Err(format!(
                "unknown unit {u:?} in {s:?}; use B, KiB, MiB, GiB, TiB (or K, M, G, T), KB, MB, GB, TB"
            ))
        }
    };
    let (int, frac) = num.split_once('.').unwrap_or((&num, ""));
    let bad = || format!("{s:?} is not a size; write e.g. 4GiB, 512MiB or 1000000");
    if int.is_empty() && frac.is_empty() {
        return Err(bad());
    }
    let int: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let (frac_num, frac_den) = if frac.is_empty() {
        (0u128, 1u128)
    } else {
        let den = 10u128
            .checked_pow(frac.len() as u32)
            .filter(|_| frac.len() <= 18)
            .ok_or_else(bad)?;
        (frac.parse::<u128>().map_err(|_| bad())?, den)
    };
    let scaled_frac = frac_num * u128::from(mult);
    if scaled_frac % frac_den != 0 {
        return Err(format!("{s:?} is not a whole number of bytes"));
    }
    int.checked_mul(u128::from(mult))
        .and_then(|b| b.checked_add(scaled_frac / frac_den))
        .and_then(|b| u64::try_from(b).ok())
        .ok_or_else(|| format!("{s:?} is too large"))
}

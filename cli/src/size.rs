//! Human sizes on the command line: `4GiB`, `512M`, `1.5GB`, `1000000`.

/// Parses `4GiB`, `512M`, `1.5GB`, `1000000`: a number (decimals allowed if the result is a
/// whole number of bytes) and an optional unit: `K M G T` and `KiB MiB GiB TiB` are powers of
/// 1024, `KB MB GB TB` powers of 1000. The command-line programs share it.
///
/// # Errors
/// A message naming the input when it is not a size or does not fit in `u64`.
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
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
    let bytes = int
        .checked_mul(u128::from(mult))
        .and_then(|b| b.checked_add(scaled_frac / frac_den))
        .and_then(|b| u64::try_from(b).ok())
        .ok_or_else(|| format!("{s:?} is too large"))?;
    Ok(bytes)
}

/// [`parse_size`] for a budget: the bytes as a `usize`.
pub fn parse_budget(s: &str) -> std::result::Result<usize, String> {
    let b = parse_size(s)?;
    usize::try_from(b).map_err(|_| format!("{s:?} is too large for this machine"))
}

/// `bytes` as a short human size: `1.5 GiB`, `512 MiB`, `100 B`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else if v >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("512mib"), Ok(512 << 20));
        assert_eq!(parse_size("1.5GB"), Ok(1_500_000_000));
        assert_eq!(parse_size("0.5KiB"), Ok(512));
        assert_eq!(parse_size("1_000_000"), Ok(1_000_000));
        assert_eq!(parse_size("100 B"), Ok(100));
        assert!(parse_size("1.3B")
            .unwrap_err()
            .contains("whole number of bytes"));
        assert!(parse_size("4QB").unwrap_err().contains("unknown unit"));
        assert!(parse_size("GiB").is_err());
        assert!(parse_size("99999999999TiB")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(100), "100 B");
        assert_eq!(human(512 << 20), "512 MiB");
        assert_eq!(human(3 << 29), "1.5 GiB");
    }
}

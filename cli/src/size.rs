//! Human sizes on the command line: `4GiB`, `512M`, `1.5GB`, `1000000`.

/// [`outcore::parse_size`], its error as a message for the command line.
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    outcore::parse_size(s).map_err(|e| e.to_string())
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
    fn human_sizes() {
        assert_eq!(human(100), "100 B");
        assert_eq!(human(512 << 20), "512 MiB");
        assert_eq!(human(3 << 29), "1.5 GiB");
    }
}

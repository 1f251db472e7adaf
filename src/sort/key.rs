//! Sort keys: the total order outcore sorts by.
//!
//! Every sortable type maps to an unsigned, `Ord` key whose order is the sort order. For
//! integers that is the value with the sign bit flipped; for floats it is numpy's order:
//! `-inf < ... < -0.0 < 0.0 < ... < inf < NaN` (all NaNs last; `-0.0` sorts before `0.0`,
//! which numpy leaves unspecified but outcore fixes so that results are reproducible). The
//! same key drives the radix sort (its bytes) and the comparison sort and merge (its `Ord`).

/// A type with a total sort order given by an unsigned key.
pub trait SortKey: Copy + Send + Sync + 'static {
    /// The key; `a.sort_key() < b.sort_key()` iff `a` sorts before `b`.
    type Key: Ord + Copy + Send + Sync + std::fmt::Debug;

    /// The key of `self`.
    fn sort_key(&self) -> Self::Key;
}

macro_rules! unsigned_key {
    ($($t:ty),*) => {$(
        impl SortKey for $t {
            type Key = $t;
            #[inline]
            fn sort_key(&self) -> $t {
                *self
            }
        }
    )*};
}
unsigned_key!(u8, u16, u32, u64);

macro_rules! signed_key {
    ($($t:ty => $u:ty),*) => {$(
        impl SortKey for $t {
            type Key = $u;
            #[inline]
            fn sort_key(&self) -> $u {
                (*self as $u) ^ (1 << (<$u>::BITS - 1))
            }
        }
    )*};
}
signed_key!(i8 => u8, i16 => u16, i32 => u32, i64 => u64);

macro_rules! float_key {
    ($($t:ty => $u:ty),*) => {$(
        impl SortKey for $t {
            type Key = $u;
            #[inline]
            fn sort_key(&self) -> $u {
                if self.is_nan() {
                    // Every NaN (any sign, any payload) sorts last, equal to each other.
                    return <$u>::MAX;
                }
                let bits = self.to_bits();
                let sign = 1 << (<$u>::BITS - 1);
                // Negative floats: flip all bits (larger magnitude sorts first); positive:
                // set the sign bit so they sort after every negative.
                if bits & sign != 0 { !bits } else { bits | sign }
            }
        }
    )*};
}
float_key!(f32 => u32, f64 => u64);

/// A fixed-size record of `N` bytes whose first `K` bytes are its key, compared as unsigned
/// bytes (lexicographically): the layout of the Sort Benchmark (`Record<100, 10>`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(transparent)]
pub struct Record<const N: usize, const K: usize>(pub [u8; N]);

// SAFETY: a transparent wrapper of a byte array: no padding, every bit pattern valid.
unsafe impl<const N: usize, const K: usize> bytemuck::Zeroable for Record<N, K> {}
// SAFETY: as above; `[u8; N]` is `Pod` and `Record` is `repr(transparent)` over it.
unsafe impl<const N: usize, const K: usize> bytemuck::Pod for Record<N, K> {}

impl<const N: usize, const K: usize> SortKey for Record<N, K> {
    type Key = [u8; K];
    #[inline]
    fn sort_key(&self) -> [u8; K] {
        const { assert!(K <= N, "the key cannot be longer than the record") };
        let mut k = [0u8; K];
        k.copy_from_slice(&self.0[..K]);
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_order_is_numpys() {
        let mut v = vec![
            f64::NAN,
            1.0,
            -0.0,
            0.0,
            f64::INFINITY,
            -f64::NAN,
            f64::NEG_INFINITY,
            -1.5,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
        ];
        v.sort_by_key(|x| x.sort_key());
        let s: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
        assert_eq!(
            s,
            [
                "-inf",
                "-1.5",
                "-2.2250738585072014e-308",
                "-0.0",
                "0.0",
                "2.2250738585072014e-308",
                "1.0",
                "inf",
                "NaN",
                "NaN"
            ]
        );
    }

    #[test]
    fn signed_order() {
        let mut v = vec![i64::MAX, -1, 0, i64::MIN, 1];
        v.sort_by_key(|x| x.sort_key());
        assert_eq!(v, [i64::MIN, -1, 0, 1, i64::MAX]);
        let mut w = vec![i8::MAX, -1, 0, i8::MIN];
        w.sort_by_key(|x| x.sort_key());
        assert_eq!(w, [i8::MIN, -1, 0, i8::MAX]);
    }

    #[test]
    fn record_keys_are_unsigned_bytes() {
        let a = Record::<4, 2>([0x80, 0, 9, 9]);
        let b = Record::<4, 2>([0x7f, 0xff, 0, 0]);
        assert!(b.sort_key() < a.sort_key());
    }
}

//! Sort keys: the total order outcore sorts by.
//!
//! Every sortable type maps to an unsigned, `Ord` key whose order is the sort order. For
//! integers that is the value with the sign bit flipped; for floats it is numpy's order:
//! `-inf < ... < -0.0 < 0.0 < ... < inf < NaN` (all NaNs last; `-0.0` sorts before `0.0`,
//! which numpy leaves unspecified but outcore fixes so that results are reproducible). The
//! same key drives the radix sort (its bytes) and the comparison sort and merge (its `Ord`).

/// A type with a total sort order given by an unsigned key.
///
/// Sortable types are plain data (`Pod`), so that the radix sort can allocate its scratch
/// buffer zeroed, without a pass that initialises it.
pub trait SortKey: bytemuck::Pod + Send + Sync + 'static {
    /// The key; `a.sort_key() < b.sort_key()` iff `a` sorts before `b`.
    type Key: RadixKey;

    /// The key of `self`.
    fn sort_key(&self) -> Self::Key;
}

/// A key the radix sort can take apart: its most significant 64 bits as an integer whose
/// order agrees with the key's order.
///
/// Implemented for the unsigned integers (the key is its own prefix) and for byte arrays
/// compared as unsigned bytes (the first 8 bytes, big-endian). When
/// [`PREFIX_IS_KEY`](RadixKey::PREFIX_IS_KEY) is false, keys with equal prefixes are ordered
/// by their full `Ord`.
pub trait RadixKey: Ord + Copy + Send + Sync + std::fmt::Debug {
    /// Whether [`radix_prefix`](RadixKey::radix_prefix) is the whole key (equal prefixes
    /// mean equal keys).
    const PREFIX_IS_KEY: bool;

    /// The most significant 64 bits of the key: `a.radix_prefix() < b.radix_prefix()`
    /// implies `a < b`.
    fn radix_prefix(&self) -> u64;
}

macro_rules! radix_uint {
    ($($t:ty),*) => {$(
        impl RadixKey for $t {
            const PREFIX_IS_KEY: bool = true;
            #[inline]
            fn radix_prefix(&self) -> u64 {
                *self as u64
            }
        }
    )*};
}
radix_uint!(u8, u16, u32, u64);

impl<const K: usize> RadixKey for [u8; K] {
    const PREFIX_IS_KEY: bool = K <= 8;
    #[inline]
    fn radix_prefix(&self) -> u64 {
        let mut b = [0u8; 8];
        let n = K.min(8);
        b[..n].copy_from_slice(&self[..n]);
        u64::from_be_bytes(b)
    }
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

/// Byte strings of a fixed length sort as unsigned bytes, lexicographically (the order of
/// `memcmp`): the key of a record's byte range.
impl<const K: usize> SortKey for [u8; K] {
    type Key = [u8; K];
    #[inline]
    fn sort_key(&self) -> [u8; K] {
        *self
    }
}

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
    ($($t:ty => $u:ty, $i:ty),*) => {$(
        impl SortKey for $t {
            type Key = $u;
            #[inline]
            fn sort_key(&self) -> $u {
                let bits = self.to_bits();
                let sign: $u = 1 << (<$u>::BITS - 1);
                // Negative floats: flip all bits (larger magnitude sorts first); positive:
                // set the sign bit so they sort after every negative. Written without a
                // branch on the sign, which a sort of mixed-sign data would mispredict.
                let flip = ((bits as $i) >> (<$u>::BITS - 1)) as $u | sign;
                // Every NaN (any sign, any payload) sorts last, equal to each other.
                if self.is_nan() { <$u>::MAX } else { bits ^ flip }
            }
        }
    )*};
}
float_key!(f32 => u32, i32, f64 => u64, i64);

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

//! Run-time CPU feature dispatch for the hot loops.
//!
//! The crate is built for baseline x86-64 (SSE2). A few loops (the radix sort's counting and
//! scatter passes, the in-place partition's classification, min/max, the histogram kernel)
//! run faster when the compiler may use the instructions of a newer CPU. Each of them is
//! written once, as ordinary generic Rust (an `#[inline(always)]` function), and the
//! `multiversion!` macro inlines it into one function per level, compiled with that level's
//! `#[target_feature]`s, and calls the one for the best instruction set the CPU has
//! ([`Isa`]): the compiler vectorises or schedules the loop for that instruction set. The
//! portable path (`Isa::Baseline`) is the same code compiled for the crate's target, and
//! runs everywhere.
//!
//! The instruction set is detected once (`is_x86_feature_detected!`). The environment
//! variable `OUTCORE_FORCE_ISA=baseline|avx2|avx512` (read once, at the first detection)
//! lowers it, as does [`force_isa`]; neither can raise it above what the CPU has.

use std::sync::atomic::{AtomicU8, Ordering};

/// An instruction-set level the hot loops are compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// The crate's compile-time target (x86-64: SSE2), on every CPU.
    Baseline,
    /// x86-64-v3: AVX2, FMA, BMI1/2, LZCNT, POPCNT.
    Avx2,
    /// x86-64-v4: v3 plus AVX-512 F, BW, CD, DQ, VL.
    Avx512,
}

impl Isa {
    const ALL: [Isa; 3] = [Isa::Baseline, Isa::Avx2, Isa::Avx512];

    /// The best level this CPU supports (detected once, cached).
    pub fn detect() -> Isa {
        static DETECTED: AtomicU8 = AtomicU8::new(u8::MAX);
        match DETECTED.load(Ordering::Relaxed) {
            u8::MAX => {
                let isa = detect_hardware();
                DETECTED.store(isa as u8, Ordering::Relaxed);
                isa
            }
            v => Isa::ALL[v as usize],
        }
    }

    /// The level the hot loops use: [`Isa::detect`], lowered by `OUTCORE_FORCE_ISA` or
    /// [`force_isa`].
    pub fn active() -> Isa {
        match ACTIVE.load(Ordering::Relaxed) {
            u8::MAX => {
                let isa = std::env::var("OUTCORE_FORCE_ISA")
                    .ok()
                    .and_then(|v| Isa::parse(&v))
                    .map_or(Isa::detect(), |f| f.min(Isa::detect()));
                // A concurrent `force_isa` wins over the environment.
                let _ = ACTIVE.compare_exchange(
                    u8::MAX,
                    isa as u8,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                Isa::ALL[ACTIVE.load(Ordering::Relaxed) as usize]
            }
            v => Isa::ALL[v as usize],
        }
    }

    /// Every level this CPU can run, from [`Isa::Baseline`] up to [`Isa::detect`] (for
    /// tests that compare every path with the portable one).
    pub fn available() -> Vec<Isa> {
        Isa::ALL
            .into_iter()
            .filter(|&i| i <= Isa::detect())
            .collect()
    }

    /// The level named `baseline`, `avx2` or `avx512` (any case).
    pub fn parse(name: &str) -> Option<Isa> {
        match name.trim().to_ascii_lowercase().as_str() {
            "baseline" | "none" | "sse2" => Some(Isa::Baseline),
            "avx2" => Some(Isa::Avx2),
            "avx512" => Some(Isa::Avx512),
            _ => None,
        }
    }
}

/// The active level (`u8::MAX`: not chosen yet).
static ACTIVE: AtomicU8 = AtomicU8::new(u8::MAX);

/// Sets the level the hot loops use from now on (at most what the CPU has); `None` goes
/// back to the detected one. For tests and benchmarks.
#[doc(hidden)]
pub fn force_isa(isa: Option<Isa>) {
    let isa = isa.map_or(Isa::detect(), |i| i.min(Isa::detect()));
    ACTIVE.store(isa as u8, Ordering::Relaxed);
}

#[cfg(target_arch = "x86_64")]
fn detect_hardware() -> Isa {
    let v3 = is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("bmi1")
        && is_x86_feature_detected!("bmi2")
        && is_x86_feature_detected!("lzcnt")
        && is_x86_feature_detected!("popcnt");
    let v4 = v3
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512cd")
        && is_x86_feature_detected!("avx512dq")
        && is_x86_feature_detected!("avx512vl");
    if v4 {
        Isa::Avx512
    } else if v3 {
        Isa::Avx2
    } else {
        Isa::Baseline
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect_hardware() -> Isa {
    Isa::Baseline
}

/// Defines `$name(isa, args..)`, which runs `$inner(args..)` (an `#[inline(always)]`
/// function, generic or not) compiled for `isa` (lowered to what the CPU has): one copy of
/// `$inner` is inlined into a function with each level's `#[target_feature]`s, and one into
/// a plain function for the portable path. Generics and bounds are given in brackets:
///
/// ```ignore
/// multiversion! {
///     /// Docs.
///     pub(crate) fn count_dispatch[T: Copy](data: &[T], x: T) -> usize => count;
/// }
/// ```
macro_rules! multiversion {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident [$($gen:tt)*] ($($arg:ident : $ty:ty),* $(,)?) -> $ret:ty
        $(where [$($wh:tt)*])? => $inner:path;
    ) => {
        $(#[$meta])*
        #[inline(always)]
        $vis fn $name<$($gen)*>(isa: $crate::cpu::Isa, $($arg: $ty),*) -> $ret
        $(where $($wh)*)?
        {
            #[inline(never)]
            fn baseline<$($gen)*>($($arg: $ty),*) -> $ret $(where $($wh)*)? {
                $inner($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
            fn avx2<$($gen)*>($($arg: $ty),*) -> $ret $(where $($wh)*)? {
                $inner($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(
                enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt,avx512f,avx512bw,avx512cd,avx512dq,avx512vl"
            )]
            fn avx512<$($gen)*>($($arg: $ty),*) -> $ret $(where $($wh)*)? {
                $inner($($arg),*)
            }
            match $crate::cpu::clamp(isa) {
                // SAFETY: `clamp` lowers the level to `Isa::detect()`: the CPU has every
                // feature `avx512` is compiled with (checked by `is_x86_feature_detected!`).
                #[cfg(target_arch = "x86_64")]
                $crate::cpu::Isa::Avx512 => unsafe { avx512($($arg),*) },
                // SAFETY: as above, for `avx2`'s features.
                #[cfg(target_arch = "x86_64")]
                $crate::cpu::Isa::Avx2 => unsafe { avx2($($arg),*) },
                _ => baseline($($arg),*),
            }
        }
    };
}
pub(crate) use multiversion;

/// `isa` lowered to what this CPU supports.
#[inline(always)]
pub(crate) fn clamp(isa: Isa) -> Isa {
    isa.min(Isa::detect())
}

/// Asks the CPU to bring the cache line of `s[i]` into its caches (a hint: nothing is
/// read, an `i` past the end is harmless, and nothing happens on other architectures). For
/// loops whose next load depends on a pointer chase, such as a merge's loser tree, where
/// the hardware prefetcher does not see the streams coming.
#[inline(always)]
pub(crate) fn prefetch<T>(s: &[T], i: usize) {
    // Address arithmetic only (`wrapping_add` needs no valid target).
    let p = s.as_ptr().wrapping_add(i).cast::<i8>();
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` needs SSE, which every x86-64 CPU has (it is in the baseline
    // the crate is built for). It dereferences nothing: a prefetch of any address, mapped
    // or not, never faults and has no effect but on the caches.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// [`prefetch`] of the [`LANES`](crate::kernels::LANES) elements of `s` from `i`: one hint
/// per cache line of 64 bytes (or per element if elements are larger).
#[inline(always)]
pub(crate) fn prefetch_lanes<T>(s: &[T], i: usize) {
    let step = (64 / std::mem::size_of::<T>().max(1)).max(1);
    let mut k = 0;
    while k < crate::kernels::LANES {
        prefetch(s, i + k);
        k += step;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_and_clamped() {
        assert!(Isa::Baseline < Isa::Avx2 && Isa::Avx2 < Isa::Avx512);
        let all = Isa::available();
        assert_eq!(all[0], Isa::Baseline);
        assert_eq!(*all.last().unwrap(), Isa::detect());
        assert!(Isa::active() <= Isa::detect());
        multiversion! {
            fn add_dispatch[](a: &[u64]) -> u64 => add;
        }
        #[inline(always)]
        fn add(a: &[u64]) -> u64 {
            a.iter().sum()
        }
        for isa in [Isa::Baseline, Isa::Avx2, Isa::Avx512] {
            // Any level runs, lowered to what the CPU has.
            assert!(clamp(isa) <= Isa::detect());
            assert_eq!(add_dispatch(isa, &[1, 2, 3]), 6);
        }
        assert_eq!(Isa::parse("AVX512"), Some(Isa::Avx512));
        assert_eq!(Isa::parse("baseline"), Some(Isa::Baseline));
        assert_eq!(Isa::parse("neon"), None);
    }
}

//! `outcore demo` tests.

#[allow(unused_imports)]
use crate::common::*;

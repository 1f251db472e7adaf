//! `outcore stats` tests.

#[allow(unused_imports)]
use crate::common::*;

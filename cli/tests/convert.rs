//! `outcore convert` tests.

#[allow(unused_imports)]
use crate::common::*;

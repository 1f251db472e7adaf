//! `outcore sort` tests.

#[allow(unused_imports)]
use crate::common::*;

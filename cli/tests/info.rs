//! `outcore info` tests.

#[allow(unused_imports)]
use crate::common::*;

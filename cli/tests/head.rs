//! `outcore head` tests.

#[allow(unused_imports)]
use crate::common::*;

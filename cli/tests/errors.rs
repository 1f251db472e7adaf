//! Bad input across subcommands: exit statuses and one-line messages.

#[allow(unused_imports)]
use crate::common::*;

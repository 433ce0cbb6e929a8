//! The `medulla` binary's library half: pieces the command line and the integration
//! tests share.

pub mod admin;

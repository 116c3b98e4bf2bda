//! Helpers the terminal tests share: running the `carepass` binary as a process.

use std::path::Path;
use std::process::{Command, Output};

/// Runs `carepass --server SERVER --data DATA ARGS…` with no CAREPASS_* variables inherited.
pub fn carepass(server: &str, data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_carepass"))
        .env_remove("CAREPASS_SERVER")
        .env_remove("CAREPASS_DATA")
        .env_remove("CAREPASS_SCANNER_TOKEN")
        .arg("--server")
        .arg(server)
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .expect("carepass runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

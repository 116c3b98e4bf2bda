//! Helpers the terminal tests share: running the `carepass` binary as a process.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `carepass --server SERVER --data DATA ARGS…` with no CAREPASS_* variables inherited
/// and the data key in [`config_for`]`(data)`.
#[allow(dead_code)]
pub fn carepass(server: &str, data: &Path, args: &[&str]) -> Output {
    bare()
        .env("CAREPASS_CONFIG", config_for(data))
        .arg("--server")
        .arg(server)
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .expect("carepass runs")
}

/// The `carepass` binary with no CAREPASS_* variable inherited and no config directory.
pub fn bare() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_carepass"));
    for var in ["CAREPASS_SERVER", "CAREPASS_DATA", "CAREPASS_SCANNER_TOKEN", "CAREPASS_CONFIG"] {
        command.env_remove(var);
    }
    command
}

/// The config directory (where the data key lives) the tests give the phone in `data`: a
/// sibling of it, so it goes away with the same temporary directory.
pub fn config_for(data: &Path) -> PathBuf {
    let mut name = data.file_name().unwrap_or_default().to_os_string();
    name.push(".config");
    data.with_file_name(name)
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// [`carepass`] as a [`Command`], to spawn (and kill) or to give more variables: the same
/// `--server`, `--data` and config directory, and no `CAREPASS_CRASH_AT` inherited.
#[allow(dead_code)]
pub fn command(server: &str, data: &Path, args: &[&str]) -> Command {
    let mut command = bare();
    command
        .env_remove("CAREPASS_CRASH_AT")
        .env("CAREPASS_CONFIG", config_for(data))
        .arg("--server")
        .arg(server)
        .arg("--data")
        .arg(data)
        .args(args);
    command
}

//! Where the terminal keeps its data key: outside the data directory, in the user's config
//! directory (`$CAREPASS_CONFIG`, else `$XDG_CONFIG_HOME/carepass`, else
//! `~/.config/carepass`), one folder per store, mode 0700 — the terminal's stand-in for a
//! phone's keystore. The data directory holds only a random store id naming that folder, so
//! a copy of the data directory alone (a backup, another machine) opens nothing: no code, no
//! session, no bill.
//!
//! Data directories from earlier builds kept the key inside (`<data>/keys`); the first open
//! moves it out.

use std::path::{Path, PathBuf};

use carepass_core::io::secrets::FileSecretStore;

const STORE_ID_FILE: &str = "store-id";

/// The user's CarePass config directory.
pub fn config_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("CAREPASS_CONFIG") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(xdg) = std::env::var_os("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(xdg).join("carepass"));
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".config/carepass"))
        .ok_or_else(|| "no config directory for the data key: set CAREPASS_CONFIG or HOME".into())
}

/// The secret store of the store in `data`, its key under `config` (created with the store's
/// id on first use).
pub fn secret_store(data: &Path, config: &Path) -> Result<FileSecretStore, String> {
    std::fs::create_dir_all(data).map_err(|e| format!("cannot create the data directory {}: {e}", data.display()))?;
    let id = store_id(data)?;
    let folder = config.join("keys").join(&id);
    private_dir(&folder)?;
    let legacy = data.join("keys");
    if legacy.is_dir() {
        move_legacy_keys(&legacy, &folder)?;
    }
    Ok(FileSecretStore::new(folder))
}

/// The random id in `<data>/store-id`, written on first use (0600).
fn store_id(data: &Path) -> Result<String, String> {
    let path = data.join(STORE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim().to_string();
            if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Ok(id);
            }
            Err(format!(
                "{} is damaged (not a store id); move the data directory aside and sign in again",
                path.display()
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 16];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
                .map_err(|_| "the random generator failed".to_string())?;
            let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            write_private(&path, id.as_bytes())?;
            Ok(id)
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Moves `*.secret` files from an old `<data>/keys` into the config folder, then removes it.
fn move_legacy_keys(legacy: &Path, folder: &Path) -> Result<(), String> {
    let entries = std::fs::read_dir(legacy).map_err(|e| format!("cannot read {}: {e}", legacy.display()))?;
    for entry in entries.flatten() {
        let from = entry.path();
        let Some(name) = from.file_name() else { continue };
        let to = folder.join(name);
        if !to.exists() {
            let bytes = std::fs::read(&from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
            write_private(&to, &bytes)?;
        }
        std::fs::remove_file(&from).map_err(|e| format!("cannot remove {}: {e}", from.display()))?;
    }
    let _ = std::fs::remove_dir(legacy);
    Ok(())
}

fn private_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("cannot restrict {}: {e}", dir.display()))?;
    }
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    file.write_all(bytes).and_then(|_| file.sync_all()).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

//! Embedded first start: an account `local` with a dev key, so a new user can `curl` at once.

use std::io::Write;
use std::path::{Path, PathBuf};

use leasehold_core::accounts;

use crate::state::AppState;

/// Opening credit of the embedded `local` account.
pub const LOCAL_CREDIT_MICROS: i64 = 1_000_000;

/// Result of the first-start check.
#[derive(Debug)]
pub enum DevKey {
    /// Created now; the key is in the file and returned here to print once.
    Created {
        /// The plaintext key.
        key: String,
        /// Where it was written.
        path: PathBuf,
    },
    /// Accounts already exist; nothing was created.
    Existing,
}

/// On SQLite with no account yet, creates `local` with 1,000,000 micros and writes its key to
/// `<data_dir>/dev-api-key` (mode 0600).
pub async fn ensure_dev_account(state: &AppState) -> anyhow::Result<DevKey> {
    if !state.config.is_sqlite() || accounts::count(&state.db).await? > 0 {
        return Ok(DevKey::Existing);
    }
    let created = accounts::create(&state.db, "local", LOCAL_CREDIT_MICROS, state.now()).await?;
    let path = state.config.data_dir.join("dev-api-key");
    write_private(&path, &created.api_key)?;
    Ok(DevKey::Created { key: created.api_key, path })
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    Ok(())
}

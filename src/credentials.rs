//! Model API keys per client and provider, for the third-party coding agents ecca runs:
//! stored encrypted (AES-256-GCM, the row id as associated data), listed only masked, and
//! decrypted only to go into the environment of that client's agent.

use crate::secrets::{MasterKey, mask, open};
use rusqlite::{OptionalExtension, params};
use std::path::Path;

pub const PROVIDERS: &[&str] = &["anthropic", "openai"];

/// A stored key as a list shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredKey {
    pub client_id: String,
    pub provider: String,
    /// `****` and the last four characters.
    pub masked: String,
    pub updated_at: i64,
}

fn check_provider(provider: &str) -> Result<(), String> {
    if PROVIDERS.contains(&provider) {
        Ok(())
    } else {
        Err(format!(
            "{provider:?} is not a provider; use {}",
            PROVIDERS.join(" or ")
        ))
    }
}

/// Stores (or replaces) `client_id`'s key for `provider`.
pub fn add(data_dir: &Path, client_id: &str, provider: &str, key: &str) -> Result<(), String> {
    check_provider(provider)?;
    let key = key.trim();
    if key.len() < 8 {
        return Err(
            "that key is shorter than 8 characters; check the variable holds the whole key".into(),
        );
    }
    let master = MasterKey::load(data_dir)?;
    let mut conn = open(data_dir)?;
    let tx = conn.transaction().map_err(|e| e.to_string())?;
    crate::secrets::require_client(&tx, client_id)?;
    tx.execute(
        "INSERT INTO client_credentials (client_id, provider, masked, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(client_id, provider) DO UPDATE SET masked = excluded.masked, updated_at = excluded.updated_at",
        params![client_id, provider, mask(key), crate::time::now_ms()],
    )
    .map_err(|e| e.to_string())?;
    let row_id: i64 = tx
        .query_row(
            "SELECT id FROM client_credentials WHERE client_id = ?1 AND provider = ?2",
            [client_id, provider],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    // The row exists first so its id can bind the ciphertext; one transaction, so a key
    // is never stored half-written.
    let blob = master.encrypt(key.as_bytes(), &row_id.to_le_bytes())?;
    tx.execute(
        "UPDATE client_credentials SET key_encrypted = ?2 WHERE id = ?1",
        params![row_id, blob],
    )
    .map_err(|e| e.to_string())?;
    tx.commit().map_err(|e| e.to_string())
}

/// Every stored key, masked.
pub fn list(data_dir: &Path) -> Result<Vec<StoredKey>, String> {
    let conn = open(data_dir)?;
    let mut statement = conn
        .prepare(
            "SELECT client_id, provider, masked, updated_at FROM client_credentials
             ORDER BY client_id, provider",
        )
        .map_err(|e| e.to_string())?;
    let rows = statement
        .query_map([], |r| {
            Ok(StoredKey {
                client_id: r.get(0)?,
                provider: r.get(1)?,
                masked: r.get(2)?,
                updated_at: r.get(3)?,
            })
        })
        .map_err(|e| e.to_string())?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

/// Removes a stored key; says so when there was none.
pub fn remove(data_dir: &Path, client_id: &str, provider: &str) -> Result<(), String> {
    check_provider(provider)?;
    let conn = open(data_dir)?;
    let removed = conn
        .execute(
            "DELETE FROM client_credentials WHERE client_id = ?1 AND provider = ?2",
            [client_id, provider],
        )
        .map_err(|e| e.to_string())?;
    if removed == 0 {
        return Err(format!("client {client_id} has no {provider} key stored"));
    }
    Ok(())
}

/// `client_id`'s key for `provider`, decrypted, if one is stored: only for the
/// environment of that client's agent.
pub fn key_for(data_dir: &Path, client_id: &str, provider: &str) -> Result<Option<String>, String> {
    let conn = open(data_dir)?;
    let row: Option<(i64, Option<Vec<u8>>)> = conn
        .query_row(
            "SELECT id, key_encrypted FROM client_credentials WHERE client_id = ?1 AND provider = ?2",
            [client_id, provider],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(|e| e.to_string())?;
    let Some((id, Some(blob))) = row else {
        return Ok(None);
    };
    let master = MasterKey::load(data_dir)?;
    let key = String::from_utf8(master.decrypt(&blob, &id.to_le_bytes())?)
        .map_err(|_| format!("the stored {provider} key of {client_id} is not text"))?;
    Ok(Some(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_stored_encrypted_listed_masked_and_bound_to_its_row() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        let conn = rusqlite::Connection::open(store.path()).unwrap();
        for id in ["acme", "globex"] {
            conn.execute(
                "INSERT INTO clients (id, name, monthly_budget_micros, created_at) VALUES (?1, ?1, 1, 0)",
                [id],
            )
            .unwrap();
        }
        add(dir.path(), "acme", "anthropic", "sk-ant-one-1111").unwrap();
        add(dir.path(), "globex", "anthropic", "sk-ant-two-2222").unwrap();
        assert_eq!(
            key_for(dir.path(), "acme", "anthropic").unwrap().as_deref(),
            Some("sk-ant-one-1111")
        );
        assert_eq!(key_for(dir.path(), "acme", "openai").unwrap(), None);
        let listed = list(dir.path()).unwrap();
        assert_eq!(listed[0].masked, "****1111");
        let bytes = std::fs::read(store.path()).unwrap_or_default();
        assert!(!bytes.windows(15).any(|w| w == b"sk-ant-one-1111"));
        // A ciphertext copied to another client's row does not decrypt there.
        conn.execute(
            "UPDATE client_credentials SET key_encrypted = (SELECT key_encrypted FROM client_credentials WHERE client_id = 'acme') WHERE client_id = 'globex'",
            [],
        )
        .unwrap();
        assert!(key_for(dir.path(), "globex", "anthropic").is_err());
        assert!(
            add(dir.path(), "nobody", "anthropic", "sk-ant-xxxxxxxx")
                .unwrap_err()
                .contains("does not exist")
        );
        assert!(
            add(dir.path(), "acme", "mistral", "sk-xxxxxxxxxx")
                .unwrap_err()
                .contains("not a provider")
        );
        remove(dir.path(), "acme", "anthropic").unwrap();
        assert_eq!(key_for(dir.path(), "acme", "anthropic").unwrap(), None);
        assert!(remove(dir.path(), "acme", "anthropic").is_err());
    }
}

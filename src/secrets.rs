//! Secrets at rest: AES-256-GCM with a fresh nonce per value and the row id as associated
//! data, so a ciphertext copied to another row does not decrypt. The master key comes from
//! `ECCA_MASTER_KEY` (64 hex digits) or a 0600 `master.key` file in the data dir, created on
//! first use. A secret is shown only masked to its last four characters.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rusqlite::{Connection, OptionalExtension, params};
use std::io::Read;
use std::path::Path;

const KEY_FILE: &str = "master.key";
const NONCE_LEN: usize = 12;

pub struct MasterKey {
    cipher: Aes256Gcm,
}

fn random<const N: usize>() -> Result<[u8; N], String> {
    let mut buf = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| format!("could not read random bytes from /dev/urandom: {e}"))?;
    Ok(buf)
}

fn from_hex(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
    }
    Some(out)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl MasterKey {
    /// The key from `ECCA_MASTER_KEY`, else the data dir's key file (made if missing).
    pub fn load(data_dir: &Path) -> Result<MasterKey, String> {
        let bytes = match std::env::var("ECCA_MASTER_KEY") {
            Ok(v) if !v.is_empty() => {
                from_hex(&v).ok_or("ECCA_MASTER_KEY must be 64 hexadecimal digits (32 bytes)")?
            }
            _ => Self::key_file(data_dir)?,
        };
        let cipher = Aes256Gcm::new_from_slice(&bytes)
            .map_err(|e| format!("the master key is unusable: {e}"))?;
        Ok(MasterKey { cipher })
    }

    fn key_file(data_dir: &Path) -> Result<[u8; 32], String> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let path = data_dir.join(KEY_FILE);
        if path.exists() {
            let mode = std::fs::metadata(&path)
                .map_err(|e| e.to_string())?
                .permissions()
                .mode()
                & 0o777;
            if mode & 0o077 != 0 {
                return Err(format!(
                    "{} is readable by others (mode {mode:o}); run chmod 600 on it",
                    path.display()
                ));
            }
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("could not read {}: {e}", path.display()))?;
            return from_hex(&text)
                .ok_or_else(|| format!("{} does not hold a 64-digit hex key", path.display()));
        }
        std::fs::create_dir_all(data_dir).map_err(|e| e.to_string())?;
        let key: [u8; 32] = random()?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("could not create {}: {e}", path.display()))?;
        std::io::Write::write_all(&mut f, to_hex(&key).as_bytes()).map_err(|e| e.to_string())?;
        Ok(key)
    }

    /// nonce ‖ ciphertext+tag.
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, String> {
        let nonce_bytes: [u8; NONCE_LEN] = random()?;
        let nonce = Nonce::from(nonce_bytes);
        let ct = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| "encryption failed".to_string())?;
        let mut out = nonce_bytes.to_vec();
        out.extend(ct);
        Ok(out)
    }

    pub fn decrypt(&self, blob: &[u8], aad: &[u8]) -> Result<Vec<u8>, String> {
        if blob.len() < NONCE_LEN + 16 {
            return Err("the stored secret is too short to be a ciphertext".into());
        }
        let (n, ct) = blob.split_at(NONCE_LEN);
        let nonce_bytes: [u8; NONCE_LEN] = n.try_into().map_err(|_| "bad nonce".to_string())?;
        self.cipher
            .decrypt(&Nonce::from(nonce_bytes), Payload { msg: ct, aad })
            .map_err(|_| "the stored secret does not decrypt with this master key (wrong ECCA_MASTER_KEY or master.key?)".to_string())
    }
}

/// A secret as operators may see it: `****` and its last four characters.
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("****{tail}")
}

/// Replaces every occurrence of `secret` in `text` with its mask.
pub fn redact(text: &str, secret: &str) -> String {
    if secret.len() < 4 {
        return text.to_string();
    }
    text.replace(secret, &mask(secret))
}

pub(crate) fn open(data_dir: &Path) -> Result<Connection, String> {
    let store = crate::store::Store::open(data_dir).map_err(|e| e.0)?;
    let conn = Connection::open(store.path()).map_err(|e| e.to_string())?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

/// Fails with the way out when `client_id` is not a client.
pub(crate) fn require_client(tx: &rusqlite::Transaction, client_id: &str) -> Result<(), String> {
    let exists: Option<String> = tx
        .query_row("SELECT id FROM clients WHERE id = ?1", [client_id], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| e.to_string())?;
    match exists {
        Some(_) => Ok(()),
        None => Err(format!(
            "client {client_id} does not exist; add it first with `ecca clients add`"
        )),
    }
}

/// Stores a client's GitHub token (and repository) encrypted, bound to its row.
pub fn set_github_token(
    data_dir: &Path,
    client_id: &str,
    token: &str,
    repo_url: Option<&str>,
) -> Result<(), String> {
    let key = MasterKey::load(data_dir)?;
    let mut conn = open(data_dir)?;
    let tx = conn.transaction().map_err(|e| e.to_string())?;
    require_client(&tx, client_id)?;
    tx.execute(
        "INSERT INTO client_mcp_configs (client_id, repo_url, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(client_id) DO UPDATE SET repo_url = COALESCE(excluded.repo_url, client_mcp_configs.repo_url)",
        params![client_id, repo_url, crate::time::now_ms()],
    )
    .map_err(|e| e.to_string())?;
    let row_id: i64 = tx
        .query_row(
            "SELECT id FROM client_mcp_configs WHERE client_id = ?1",
            [client_id],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    let blob = key.encrypt(token.as_bytes(), &row_id.to_le_bytes())?;
    tx.execute(
        "UPDATE client_mcp_configs SET github_token_encrypted = ?2 WHERE id = ?1",
        params![row_id, blob],
    )
    .map_err(|e| e.to_string())?;
    tx.commit().map_err(|e| e.to_string())
}

/// Stores a client's repository with no token (public or local repositories). A token
/// stored earlier is kept.
pub fn set_repo(data_dir: &Path, client_id: &str, repo_url: &str) -> Result<(), String> {
    let conn = open(data_dir)?;
    let exists: Option<String> = conn
        .query_row("SELECT id FROM clients WHERE id = ?1", [client_id], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| e.to_string())?;
    if exists.is_none() {
        return Err(format!(
            "client {client_id} does not exist; add it first with `ecca clients add`"
        ));
    }
    conn.execute(
        "INSERT INTO client_mcp_configs (client_id, repo_url, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(client_id) DO UPDATE SET repo_url = excluded.repo_url",
        params![client_id, repo_url, crate::time::now_ms()],
    )
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// Refuses a repository URL that carries credentials (they would be stored and logged in
/// the clear; the token belongs in `--from-env`) or that git could take for an option.
pub fn check_repo_url(url: &str) -> Result<(), String> {
    if url.starts_with('-') {
        return Err(format!("{url:?} is not a repository URL"));
    }
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority = rest.split('/').next().unwrap_or("");
        if authority.contains('@') && scheme.starts_with("http") {
            return Err(
                "the repository URL holds credentials; give the URL without them and the token with --from-env VAR (it is stored encrypted)"
                    .into(),
            );
        }
    }
    Ok(())
}

/// A client's GitHub token and repository, decrypted. Only client-github calls this.
pub fn github_credentials(
    data_dir: &Path,
    client_id: &str,
) -> Result<(String, Option<String>), String> {
    let conn = open(data_dir)?;
    let row: Option<(i64, Option<Vec<u8>>, Option<String>)> = conn
        .query_row(
            "SELECT id, github_token_encrypted, repo_url FROM client_mcp_configs WHERE client_id = ?1",
            [client_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(|e| e.to_string())?;
    let (id, blob, repo) = row.ok_or_else(|| format!("client {client_id} has no GitHub token; set one with `ecca clients token {client_id} --from-env VAR`"))?;
    let blob = blob.ok_or_else(|| format!("client {client_id} has no GitHub token; set one with `ecca clients token {client_id} --from-env VAR`"))?;
    let key = MasterKey::load(data_dir)?;
    let token = String::from_utf8(key.decrypt(&blob, &id.to_le_bytes())?)
        .map_err(|_| "the stored token is not text".to_string())?;
    Ok((token, repo))
}

/// Stores a secret a registry entry's environment names as `secret:NAME`.
pub fn set_server_secret(data_dir: &Path, name: &str, value: &str) -> Result<(), String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(format!(
            "{name:?} is not a secret name; use letters, digits, '-', '_' or '.'"
        ));
    }
    let key = MasterKey::load(data_dir)?;
    let blob = key.encrypt(value.as_bytes(), name.as_bytes())?;
    let conn = open(data_dir)?;
    conn.execute(
        "INSERT INTO server_secrets (name, value_encrypted, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(name) DO UPDATE SET value_encrypted = excluded.value_encrypted, updated_at = excluded.updated_at",
        params![name, blob, crate::time::now_ms()],
    )
    .map_err(|e| format!("could not store the secret {name}: {e}"))?;
    Ok(())
}

/// A server secret, decrypted: only for the environment of the container that needs it.
pub fn server_secret(data_dir: &Path, name: &str) -> Result<String, String> {
    let conn = open(data_dir)?;
    let blob: Option<Vec<u8>> = conn
        .query_row(
            "SELECT value_encrypted FROM server_secrets WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| e.to_string())?;
    let blob = blob.ok_or_else(|| {
        format!("no secret named {name} is stored; store it with `ecca containers secret {name} --from-env VAR`")
    })?;
    let key = MasterKey::load(data_dir)?;
    String::from_utf8(key.decrypt(&blob, name.as_bytes())?)
        .map_err(|_| format!("the secret {name} is not text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_bound_to_the_row_and_masked() {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::load(dir.path()).unwrap();
        let blob = key
            .encrypt(b"ghp_secret123456", &7i64.to_le_bytes())
            .unwrap();
        assert!(!String::from_utf8_lossy(&blob).contains("ghp_secret"));
        assert_eq!(
            key.decrypt(&blob, &7i64.to_le_bytes()).unwrap(),
            b"ghp_secret123456"
        );
        assert!(
            key.decrypt(&blob, &8i64.to_le_bytes()).is_err(),
            "another row's id does not decrypt"
        );
        let again = key
            .encrypt(b"ghp_secret123456", &7i64.to_le_bytes())
            .unwrap();
        assert_ne!(blob, again, "a fresh nonce each time");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("master.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(mask("ghp_secret123456"), "****3456");
        assert_eq!(
            redact("push with ghp_secret123456 failed", "ghp_secret123456"),
            "push with ****3456 failed"
        );
    }
}

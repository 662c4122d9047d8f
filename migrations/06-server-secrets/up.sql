-- Secrets a registry entry injects into its server's container ("env": {"API_KEY":
-- "secret:acme-api-key"}), encrypted like the clients' tokens, bound to the name.
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value_encrypted BLOB NOT NULL,
    updated_at INTEGER NOT NULL
);

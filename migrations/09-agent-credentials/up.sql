-- Model API keys per client and provider, for the third-party coding agents: encrypted
-- with the row id as associated data (a blob copied to another row does not decrypt);
-- `masked` (`****` and the last four characters) is all a list ever shows.
CREATE TABLE client_credentials (
    id            INTEGER PRIMARY KEY,
    client_id     TEXT NOT NULL REFERENCES clients(id),
    provider      TEXT NOT NULL CHECK (provider IN ('anthropic', 'openai')),
    key_encrypted BLOB,
    masked        TEXT NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (client_id, provider)
);

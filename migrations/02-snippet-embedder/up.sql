-- Which embedder made a snippet's vector: vectors of different embedders are never compared.
ALTER TABLE snippets ADD COLUMN embedder TEXT NOT NULL DEFAULT 'local-hash-256';
CREATE INDEX snippets_client_embedder ON snippets(client_id, embedder);

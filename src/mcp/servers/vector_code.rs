//! `vector-code`: a per-client memory of good code. store_snippet, search_similar and
//! get_pattern over snippets with embeddings kept in SQLite (the `snippets` table of the
//! store). Every query is filtered by client: one client never sees another's snippets.
//!
//! The default embedder is local and needs no network or model: signed feature hashing of
//! identifiers, words and character trigrams into 256 dimensions. An OpenAI-compatible
//! `/v1/embeddings` endpoint can be used instead.

use super::fail;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::ServerConfig;
use rmcp::{ServerHandler, schemars, tool, tool_handler, tool_router};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const LOCAL_DIMS: usize = 256;
pub const LOCAL_EMBEDDER: &str = "local-hash-256";

/// Where vectors come from.
#[derive(Clone, Debug)]
pub enum Embedder {
    Local,
    /// An OpenAI-compatible endpoint (`base_url` ends before `/embeddings`).
    Remote {
        base_url: String,
        model: String,
        api_key: Option<String>,
    },
}

impl Embedder {
    pub fn name(&self) -> String {
        match self {
            Embedder::Local => LOCAL_EMBEDDER.into(),
            Embedder::Remote { model, .. } => format!("openai:{model}"),
        }
    }

    async fn embed(&self, text: &str) -> Result<Vec<f32>, String> {
        match self {
            Embedder::Local => Ok(local_embedding(text)),
            Embedder::Remote {
                base_url,
                model,
                api_key,
            } => {
                crate::install_tls_provider();
                let url = format!("{}/embeddings", base_url.trim_end_matches('/'));
                let mut req = reqwest::Client::new()
                    .post(&url)
                    .json(&serde_json::json!({"model": model, "input": [text]}));
                if let Some(key) = api_key {
                    req = req.bearer_auth(key);
                }
                let resp = req.send().await.map_err(|e| {
                    format!("the embeddings endpoint {url} could not be reached: {e}")
                })?;
                let status = resp.status();
                let body: serde_json::Value = resp.json().await.map_err(|e| {
                    format!("the embeddings endpoint answered something unreadable: {e}")
                })?;
                if !status.is_success() {
                    return Err(format!(
                        "the embeddings endpoint answered HTTP {status}: {}",
                        body["error"]["message"].as_str().unwrap_or("")
                    ));
                }
                let v: Vec<f32> = body["data"][0]["embedding"]
                    .as_array()
                    .ok_or("the embeddings endpoint returned no data[0].embedding")?
                    .iter()
                    .map(|x| x.as_f64().unwrap_or(0.0) as f32)
                    .collect();
                Ok(normalised(v))
            }
        }
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Splits code into lowercase words: identifiers are cut at `_`, case changes and digits.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for token in text.split(|c: char| !c.is_alphanumeric()) {
        let mut word = String::new();
        let mut prev_lower = false;
        for c in token.chars() {
            if c.is_uppercase() && prev_lower && !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            prev_lower = c.is_lowercase();
            word.extend(c.to_lowercase());
        }
        if word.len() > 1 {
            out.push(word);
        }
    }
    out
}

fn normalised(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// The local embedding: signed hashing of words (weight 1) and their trigrams (0.5).
pub fn local_embedding(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; LOCAL_DIMS];
    let mut add = |feature: &str, weight: f32| {
        let h = fnv1a(feature.as_bytes());
        let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
        v[(h % LOCAL_DIMS as u64) as usize] += sign * weight;
    };
    for w in words(text) {
        add(&w, 1.0);
        let chars: Vec<char> = format!(" {w} ").chars().collect();
        for t in chars.windows(3) {
            add(&t.iter().collect::<String>(), 0.5);
        }
    }
    normalised(v)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[derive(Clone)]
struct Entry {
    id: i64,
    language: String,
    description: String,
    code: String,
    quality: f64,
    vector: Vec<f32>,
}

/// The snippets of one client, loaded once and then kept in step with every store.
type Index = HashMap<String, Arc<Vec<Entry>>>;

#[derive(Clone)]
pub struct VectorCode {
    db: Arc<Mutex<Connection>>,
    index: Arc<Mutex<Index>>,
    embedder: Embedder,
    tool_router: ToolRouter<Self>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct StoreArgs {
    pub client_id: String,
    pub language: String,
    /// What the snippet does, in a line.
    pub description: String,
    pub code: String,
    /// The evaluator's score, 0–10.
    #[serde(default)]
    pub quality: Option<f64>,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Stored {
    pub id: i64,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SearchArgs {
    pub client_id: String,
    pub query: String,
    /// Only snippets in this language.
    #[serde(default)]
    pub language: Option<String>,
    /// At most this many (default 3).
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct PatternArgs {
    pub client_id: String,
    /// A pattern's name, matched against snippet descriptions (e.g. "retry with backoff").
    pub name: String,
    #[serde(default)]
    pub language: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Found {
    pub id: i64,
    pub language: String,
    pub description: String,
    pub code: String,
    pub quality: f64,
    pub similarity: f64,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Snippets {
    pub snippets: Vec<Found>,
}

fn check_client(client_id: &str) -> Result<(), String> {
    if client_id.trim().is_empty() {
        return fail("client_id is required: snippets are kept per client");
    }
    Ok(())
}

fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn from_blob(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

impl VectorCode {
    /// Opens the store in `data_dir` (the same `snippets` table ecca's store has).
    pub fn open(data_dir: &std::path::Path, embedder: Embedder) -> Result<Self, String> {
        // Opening the store applies its migrations; this server then reads and writes
        // the snippets table on a connection of its own.
        let store = crate::store::Store::open(data_dir).map_err(|e| e.0)?;
        let conn = Connection::open(store.path())
            .map_err(|e| format!("could not open {}: {e}", store.path().display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| e.to_string())?;
        Ok(VectorCode {
            db: Arc::new(Mutex::new(conn)),
            index: Arc::new(Mutex::new(HashMap::new())),
            embedder,
            tool_router: Self::tool_router(),
        })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The client's snippets, from memory once loaded.
    fn entries(&self, client_id: &str) -> Result<Arc<Vec<Entry>>, String> {
        if let Some(e) = self
            .index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(client_id)
        {
            return Ok(e.clone());
        }
        let loaded: Vec<Entry> = {
            let db = self.db();
            let mut stmt = db
                .prepare("SELECT id, language, description, code, COALESCE(quality, 0), embedding FROM snippets WHERE client_id = ?1 AND embedder = ?2 ORDER BY id")
                .map_err(|e| format!("could not read snippets: {e}"))?;
            stmt.query_map(params![client_id, self.embedder.name()], |r| {
                Ok(Entry {
                    id: r.get(0)?,
                    language: r.get(1)?,
                    description: r.get(2)?,
                    code: r.get(3)?,
                    quality: r.get(4)?,
                    vector: from_blob(&r.get::<_, Vec<u8>>(5)?),
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| format!("could not read snippets: {e}"))?
        };
        let loaded = Arc::new(loaded);
        self.index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(client_id.to_string(), loaded.clone());
        Ok(loaded)
    }

    fn found(e: &Entry, similarity: f32) -> Found {
        Found {
            id: e.id,
            language: e.language.clone(),
            description: e.description.clone(),
            code: e.code.clone(),
            quality: e.quality,
            similarity: (similarity as f64 * 1000.0).round() / 1000.0,
        }
    }
}

#[tool_router]
impl VectorCode {
    #[tool(
        description = "Remember a good snippet for a client.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    pub async fn store_snippet(
        &self,
        Parameters(args): Parameters<StoreArgs>,
    ) -> Result<Json<Stored>, String> {
        check_client(&args.client_id)?;
        if args.code.trim().is_empty() {
            return fail("the snippet's code is empty");
        }
        let vector = self
            .embedder
            .embed(&format!("{}\n{}", args.description, args.code))
            .await?;
        let id = {
            let db = self.db();
            db.execute(
                "INSERT INTO snippets (client_id, language, description, code, embedding, quality, created_at, embedder)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![args.client_id, args.language, args.description, args.code, to_blob(&vector), args.quality, crate::time::now_ms(), self.embedder.name()],
            )
            .map_err(|e| format!("could not store the snippet: {e}"))?;
            db.last_insert_rowid()
        };
        let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entries) = index.get_mut(&args.client_id) {
            Arc::make_mut(entries).push(Entry {
                id,
                language: args.language,
                description: args.description,
                code: args.code,
                quality: args.quality.unwrap_or(0.0),
                vector,
            });
        }
        Ok(Json(Stored { id }))
    }

    #[tool(
        description = "Find a client's snippets most similar to a query (cosine similarity).",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    pub async fn search_similar(
        &self,
        Parameters(args): Parameters<SearchArgs>,
    ) -> Result<Json<Snippets>, String> {
        check_client(&args.client_id)?;
        let query = self.embedder.embed(&args.query).await?;
        let entries = self.entries(&args.client_id)?;
        let limit = args.limit.unwrap_or(3).clamp(1, 100) as usize;
        let mut scored: Vec<(f32, &Entry)> = entries
            .iter()
            .filter(|e| args.language.as_deref().is_none_or(|l| e.language == l))
            .map(|e| (dot(&query, &e.vector), e))
            .collect();
        let keep = limit.min(scored.len());
        if keep > 0 && keep < scored.len() {
            scored.select_nth_unstable_by(keep - 1, |a, b| b.0.total_cmp(&a.0));
        }
        scored.truncate(keep);
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        Ok(Json(Snippets {
            snippets: scored.into_iter().map(|(s, e)| Self::found(e, s)).collect(),
        }))
    }

    #[tool(
        description = "A client's snippets for a named pattern (matched on descriptions), best first.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    pub async fn get_pattern(
        &self,
        Parameters(args): Parameters<PatternArgs>,
    ) -> Result<Json<Snippets>, String> {
        check_client(&args.client_id)?;
        let name = args.name.to_lowercase();
        let entries = self.entries(&args.client_id)?;
        let mut hits: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.description.to_lowercase().contains(&name))
            .filter(|e| args.language.as_deref().is_none_or(|l| e.language == l))
            .collect();
        hits.sort_by(|a, b| b.quality.total_cmp(&a.quality).then(b.id.cmp(&a.id)));
        Ok(Json(Snippets {
            snippets: hits
                .into_iter()
                .take(5)
                .map(|e| Self::found(e, 1.0))
                .collect(),
        }))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for VectorCode {
    fn get_info(&self) -> ServerConfig {
        super::server_info("vector-code", None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_code_is_closer_than_unrelated_code() {
        let a = local_embedding("def retry_with_backoff(fn, attempts): sleep and try again");
        let b = local_embedding("retry a call with exponential backoff");
        let c = local_embedding("render an svg chart of monthly sales");
        assert!(
            dot(&a, &b) > dot(&a, &c) + 0.1,
            "{} vs {}",
            dot(&a, &b),
            dot(&a, &c)
        );
        assert!((dot(&a, &a) - 1.0).abs() < 1e-5);
        assert_eq!(
            words("parseHTTPResponse_body2"),
            ["parse", "httpresponse", "body2"]
        );
    }
}

//! Configuration: models, prices, budgets, providers and limits. Read from `config.toml` in
//! the data dir (or `--config`); every field has a default and a file may set only a few.

use crate::money::{Micros, Price, usd_to_micros};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Which model backend runs tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Anthropic if `ANTHROPIC_API_KEY` is set, else OpenAI-compatible if `OPENAI_API_KEY`
    /// is set, else the offline simulated model.
    Auto,
    Anthropic,
    Openai,
    Offline,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Auto => "auto",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Openai => "openai",
            ProviderKind::Offline => "offline",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "auto" => Some(Self::Auto),
            "anthropic" => Some(Self::Anthropic),
            "openai" => Some(Self::Openai),
            "offline" => Some(Self::Offline),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelsConfig {
    pub provider: ProviderKind,
    /// Plans tasks while the task is under the switch point of its budget.
    pub planner: String,
    /// Writes code while the task is under the switch point of its budget.
    pub writer: String,
    /// Evaluates, and takes over planning and writing past the switch point.
    pub cheap: String,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            provider: ProviderKind::Auto,
            planner: "claude-sonnet-4-5".into(),
            writer: "claude-sonnet-4-5".into(),
            cheap: "claude-haiku-4-5".into(),
        }
    }
}

/// One model endpoint as written in the config; unset fields take the provider's defaults.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointConfig {
    pub base_url: Option<String>,
    /// Name of the environment variable that holds the key (the key itself never sits here).
    pub api_key_env: Option<String>,
    pub max_retries: Option<u32>,
    pub timeout_secs: Option<u64>,
}

/// An endpoint with every field decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub base_url: String,
    pub api_key_env: String,
    pub max_retries: u32,
    pub timeout_secs: u64,
}

impl EndpointConfig {
    fn resolve(&self, base_url: &str, api_key_env: &str) -> Endpoint {
        Endpoint {
            base_url: self
                .base_url
                .clone()
                .unwrap_or_else(|| base_url.to_string()),
            api_key_env: self
                .api_key_env
                .clone()
                .unwrap_or_else(|| api_key_env.to_string()),
            max_retries: self.max_retries.unwrap_or(3),
            timeout_secs: self.timeout_secs.unwrap_or(600),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProvidersConfig {
    pub anthropic: EndpointConfig,
    pub openai: EndpointConfig,
}

impl ProvidersConfig {
    /// The Anthropic endpoint; `ANTHROPIC_BASE_URL` overrides the configured base URL.
    pub fn anthropic(&self, env: &dyn Fn(&str) -> Option<String>) -> Endpoint {
        let mut e = self
            .anthropic
            .resolve("https://api.anthropic.com", "ANTHROPIC_API_KEY");
        if let Some(url) = env("ANTHROPIC_BASE_URL").filter(|u| !u.is_empty()) {
            e.base_url = url;
        }
        e
    }

    /// The OpenAI-compatible endpoint; `OPENAI_BASE_URL` overrides the configured base URL.
    pub fn openai(&self, env: &dyn Fn(&str) -> Option<String>) -> Endpoint {
        let mut e = self
            .openai
            .resolve("https://api.openai.com/v1", "OPENAI_API_KEY");
        if let Some(url) = env("OPENAI_BASE_URL").filter(|u| !u.is_empty()) {
            e.base_url = url;
        }
        e
    }
}

/// Dollar prices per million tokens as an operator writes them.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceUsd {
    pub input: f64,
    pub output: f64,
    #[serde(default)]
    pub cache_write: Option<f64>,
    #[serde(default)]
    pub cache_read: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetsConfig {
    /// Cap of one task, in dollars, unless the task sets its own.
    pub task_usd: f64,
    /// Monthly cap of the `default` client that `ecca run` uses when no client is named.
    pub default_client_monthly_usd: f64,
    /// Share of a task's budget after which planning and writing move to the cheaper model.
    pub switch_at_percent: u8,
    /// A priced task whose spend passes this share of its price is flagged (Clients view,
    /// report): the job is eating its margin.
    pub price_share_warn_percent: u32,
}

impl Default for BudgetsConfig {
    fn default() -> Self {
        BudgetsConfig {
            task_usd: 1.0,
            default_client_monthly_usd: 100.0,
            switch_at_percent: 70,
            price_share_warn_percent: 50,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupervisorConfig {
    /// Runs that may work at once; the rest wait in `pending`.
    pub concurrency: usize,
    /// Events the bus holds for a slow subscriber before telling it that it lagged.
    pub event_capacity: usize,
    /// `ecca serve` resumes the runs found interrupted when it starts (its own stop, a
    /// crash, a console closed mid-run).
    pub resume_on_start: bool,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        SupervisorConfig {
            concurrency: 4,
            event_capacity: 4096,
            resume_on_start: true,
        }
    }
}

/// `[notifications]`: what the operator is told without looking, and where.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationsConfig {
    /// A deliverable starts waiting for approval.
    pub approval: bool,
    /// A run fails.
    pub failure: bool,
    /// A client passes 80 % of its monthly cap.
    pub budget: bool,
    /// A bell and an OSC 9 notification in attached consoles.
    pub terminal: bool,
    /// A desktop notification (`notify-send`) where a desktop session is there.
    pub desktop: bool,
    /// A URL that receives a Slack-compatible JSON message (`{"text": …}`); empty: none.
    pub webhook_url: String,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        NotificationsConfig {
            approval: true,
            failure: true,
            budget: true,
            terminal: true,
            desktop: true,
            webhook_url: String::new(),
        }
    }
}

/// `[agents]`: the third-party coding agents (Claude Code, Codex CLI, Aider) ecca runs in
/// worktrees.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentsConfig {
    /// Where `scripts/install_agents.sh` put them; default `$ECCA_AGENTS_DIR`, else
    /// `~/.cache/ecca/agents`.
    pub dir: Option<String>,
    /// The longest one agent run may take.
    pub timeout_minutes: f64,
    /// An agent that prints nothing this long is stopped (their model streams can hang
    /// for good).
    pub stall_minutes: f64,
    /// The model per agent kind, e.g. `claude-code = "claude-sonnet-4-5"`.
    pub models: BTreeMap<String, String>,
    /// The model API endpoint per agent kind; default the provider's own (`[providers]`).
    pub base_urls: BTreeMap<String, String>,
}

impl Default for AgentsConfig {
    fn default() -> Self {
        AgentsConfig {
            dir: None,
            timeout_minutes: 30.0,
            stall_minutes: 5.0,
            models: BTreeMap::new(),
            base_urls: BTreeMap::new(),
        }
    }
}

/// `[schedule]`: the daily loop that starts the tasks queued with `ecca run --queue`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    pub enabled: bool,
    /// A cron expression (five fields): when the loop starts the queued tasks.
    pub cron: String,
    /// The IANA time zone the expression is read in.
    pub time_zone: String,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            enabled: true,
            cron: "0 9 * * *".into(),
            time_zone: "UTC".into(),
        }
    }
}

/// `[webhook]`: where `ecca serve` receives work (`POST /webhooks/upwork`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// The address to listen on; loopback unless a proxy in front needs otherwise.
    pub listen: String,
    /// The name of the signing secret in ecca's encrypted store (set it with
    /// `ecca containers secret NAME --from-env VAR`).
    pub secret: String,
    /// Deliveries signed longer ago than this (or this far in the future) are refused.
    pub max_age_secs: i64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            listen: "127.0.0.1:8787".into(),
            secret: "upwork-webhook".into(),
            max_age_secs: 300,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OfflineConfig {
    /// Simulated thinking time per call, so demos and tests can watch a run move.
    pub latency_ms: u64,
}

/// The console's look and keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// `dark` or `light`.
    pub theme: String,
    /// A theme file whose roles override the chosen theme's (only those it sets).
    pub theme_file: Option<std::path::PathBuf>,
    /// Key overrides, `"context.action" = "key"`, e.g. `"approvals.approve" = "a"`.
    pub keys: BTreeMap<String, String>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            theme: "dark".into(),
            theme_file: None,
            keys: BTreeMap::new(),
        }
    }
}

/// Where the engine's tools come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolsMode {
    /// The registry file if the data dir has one, else servers started inside ecca.
    Auto,
    /// Servers started inside ecca on loopback (vector-code, linter, code-execution).
    Embedded,
    /// The servers named in `mcp_servers.json`.
    Registry,
    /// No tools: every tool step is recorded as skipped.
    None,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolsConfig {
    pub mode: ToolsMode,
    /// Longest a tool call may take (sandbox runs included).
    pub call_timeout_secs: u64,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        ToolsConfig {
            mode: ToolsMode::Auto,
            call_timeout_secs: 330,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaxTokensConfig {
    pub plan: u64,
    pub write: u64,
    pub write_batch: u64,
    pub tests: u64,
    pub evaluate: u64,
}

impl Default for MaxTokensConfig {
    fn default() -> Self {
        MaxTokensConfig {
            plan: 2_048,
            write: 4_096,
            write_batch: 16_384,
            tests: 2_048,
            evaluate: 1_024,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub models: ModelsConfig,
    pub providers: ProvidersConfig,
    /// Overrides and additions to the built-in price table, keyed by model name.
    pub prices: BTreeMap<String, PriceUsd>,
    pub budgets: BudgetsConfig,
    pub supervisor: SupervisorConfig,
    pub offline: OfflineConfig,
    pub max_tokens: MaxTokensConfig,
    pub tools: ToolsConfig,
    pub console: ConsoleConfig,
    pub repos: ReposConfig,
    pub git: GitConfig,
    pub github: GithubConfig,
    /// Per-client settings, `[clients.ID]`: how its repository sets up, lints and tests
    /// itself when ecca's detection is not what the operator wants.
    pub clients: BTreeMap<String, ClientConfig>,
    pub webhook: WebhookConfig,
    pub schedule: ScheduleConfig,
    pub notifications: NotificationsConfig,
    pub agents: AgentsConfig,
}

/// Work on clients' repositories.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReposConfig {
    /// Most bytes of repository content (structure, search hits, files) a plan or a write
    /// is shown; what does not fit is left out and the prompt says so.
    pub max_context_bytes: usize,
    /// Most files a plan may name to change or create.
    pub max_files: usize,
    /// Longest one check (setup, lint, test) may run in the sandbox.
    pub check_timeout_secs: u64,
    /// Times a diff that does not apply, or a check that fails, is sent back to the writer.
    pub max_retries: u32,
}

impl Default for ReposConfig {
    fn default() -> Self {
        ReposConfig {
            max_context_bytes: 48 * 1024,
            max_files: 8,
            check_timeout_secs: 300,
            max_retries: 2,
        }
    }
}

/// Who commits a deliverable.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GitConfig {
    pub author_name: String,
    pub author_email: String,
}

impl Default for GitConfig {
    fn default() -> Self {
        GitConfig {
            author_name: "ecca".into(),
            author_email: "ecca@localhost".into(),
        }
    }
}

/// Where pull requests are opened.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GithubConfig {
    /// GitHub's REST API; `ECCA_GITHUB_API` overrides it (GitHub Enterprise, a stand-in).
    pub api_base: String,
}

impl Default for GithubConfig {
    fn default() -> Self {
        GithubConfig {
            api_base: "https://api.github.com".into(),
        }
    }
}

impl GithubConfig {
    pub fn api_base(&self, env: &dyn Fn(&str) -> Option<String>) -> String {
        env("ECCA_GITHUB_API")
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| self.api_base.clone())
    }
}

/// `[clients.ID]`: overrides for one client's repository. Each command runs with `sh -c` in
/// the sandbox, in a copy of the worktree.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientConfig {
    pub setup: Option<String>,
    pub lint: Option<String>,
    pub test: Option<String>,
    /// The branch work starts from and pull requests go to (default: the remote's default).
    pub base_branch: Option<String>,
    /// `owner/repo` for pull requests, when the repository URL does not say it.
    pub repo_slug: Option<String>,
    /// The budget of this client's tasks that arrive without one (a webhook's jobs), in
    /// US dollars; `budgets.task_usd` when unset.
    pub task_usd: Option<f64>,
}

/// Built-in prices, dollars per million tokens: input, output, cache write (5 min), cache read.
#[rustfmt::skip]
const DEFAULT_PRICES: &[(&str, Price)] = &[
    (
        "claude-opus-4-5",
        Price::per_mtok_usd(5.0, 25.0, 6.25, 0.50),
    ),
    (
        "claude-opus-4-1",
        Price::per_mtok_usd(15.0, 75.0, 18.75, 1.50),
    ),
    (
        "claude-sonnet-4-5",
        Price::per_mtok_usd(3.0, 15.0, 3.75, 0.30),
    ),
    (
        "claude-sonnet-4-0",
        Price::per_mtok_usd(3.0, 15.0, 3.75, 0.30),
    ),
    (
        "claude-haiku-4-5",
        Price::per_mtok_usd(1.0, 5.0, 1.25, 0.10),
    ),
    (
        "claude-3-5-sonnet-20241022",
        Price::per_mtok_usd(3.0, 15.0, 3.75, 0.30),
    ),
    (
        "claude-3-5-sonnet-latest",
        Price::per_mtok_usd(3.0, 15.0, 3.75, 0.30),
    ),
    (
        "claude-3-5-haiku-20241022",
        Price::per_mtok_usd(0.80, 4.0, 1.0, 0.08),
    ),
    (
        "claude-3-5-haiku-latest",
        Price::per_mtok_usd(0.80, 4.0, 1.0, 0.08),
    ),
    ("gpt-4o", Price::per_mtok_usd(2.5, 10.0, 2.5, 1.25)),
    ("gpt-4o-mini", Price::per_mtok_usd(0.15, 0.60, 0.15, 0.075)),
];

/// A configuration problem, as a sentence for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Reads `path` if it exists; a missing file means all defaults.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => {
                return Err(ConfigError(format!(
                    "could not read the config file {}: {e}; check its permissions",
                    path.display()
                )));
            }
        };
        Self::parse(&text).map_err(|e| {
            ConfigError(format!(
                "the config file {} is malformed: {}; fix it or move it aside to use the defaults",
                path.display(),
                e.0
            ))
        })
    }

    /// Parses and validates configuration text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text)
            .map_err(|e| ConfigError(e.to_string().trim().replace('\n', " ")))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.supervisor.concurrency == 0 {
            return Err(ConfigError(
                "supervisor.concurrency must be at least 1".into(),
            ));
        }
        if self.supervisor.event_capacity < 16 {
            return Err(ConfigError(
                "supervisor.event_capacity must be at least 16".into(),
            ));
        }
        if !(1..=100).contains(&self.budgets.switch_at_percent) {
            return Err(ConfigError(
                "budgets.switch_at_percent must be between 1 and 100".into(),
            ));
        }
        usd_to_micros(self.budgets.task_usd)
            .map_err(|e| ConfigError(format!("budgets.task_usd: {e}")))?;
        usd_to_micros(self.budgets.default_client_monthly_usd)
            .map_err(|e| ConfigError(format!("budgets.default_client_monthly_usd: {e}")))?;
        for (model, p) in &self.prices {
            for v in [Some(p.input), Some(p.output), p.cache_write, p.cache_read]
                .into_iter()
                .flatten()
            {
                usd_to_micros(v).map_err(|e| ConfigError(format!("prices.{model}: {e}")))?;
            }
        }
        for model in [
            &self.models.planner,
            &self.models.writer,
            &self.models.cheap,
        ] {
            if self.price_of(model).is_none() {
                return Err(ConfigError(format!(
                    "model {model} has no price; add a [prices.\"{model}\"] table with input and output dollars per million tokens"
                )));
            }
        }
        Ok(())
    }

    /// The price of a model: the config's entry, else the built-in one.
    pub fn price_of(&self, model: &str) -> Option<Price> {
        if let Some(p) = self.prices.get(model) {
            let micros = |v: f64| usd_to_micros(v).unwrap_or(0);
            return Some(Price {
                input: micros(p.input),
                output: micros(p.output),
                cache_write: micros(p.cache_write.unwrap_or(p.input)),
                cache_read: micros(p.cache_read.unwrap_or(p.input)),
            });
        }
        DEFAULT_PRICES
            .iter()
            .find(|(name, _)| *name == model)
            .map(|(_, p)| *p)
    }

    pub fn task_budget_micros(&self) -> Micros {
        usd_to_micros(self.budgets.task_usd).unwrap_or(0)
    }

    /// The daily loop, when enabled; the error says what to write in `[schedule]`.
    pub fn daily_schedule(&self) -> Result<Option<crate::schedule::Schedule>, String> {
        if !self.schedule.enabled {
            return Ok(None);
        }
        crate::schedule::Schedule::parse(&self.schedule.cron, &self.schedule.time_zone)
            .map(Some)
            .map_err(|e| format!("[schedule] in the config: {e}"))
    }

    /// A client's default task budget: its own `task_usd`, else the global default.
    pub fn client_task_budget_micros(&self, client_id: &str) -> Micros {
        self.clients
            .get(client_id)
            .and_then(|c| c.task_usd)
            .and_then(|usd| usd_to_micros(usd).ok())
            .unwrap_or_else(|| self.task_budget_micros())
    }

    pub fn default_client_budget_micros(&self) -> Micros {
        usd_to_micros(self.budgets.default_client_monthly_usd).unwrap_or(0)
    }

    /// Resolves `auto` to the provider that will really be used, from the keys present.
    pub fn resolve_provider(&self, env: &dyn Fn(&str) -> Option<String>) -> ProviderKind {
        match self.models.provider {
            ProviderKind::Auto => {
                let has_key = |name: &str| env(name).is_some_and(|k| !k.is_empty());
                if has_key(&self.providers.anthropic(env).api_key_env) {
                    ProviderKind::Anthropic
                } else if has_key(&self.providers.openai(env).api_key_env) {
                    ProviderKind::Openai
                } else {
                    ProviderKind::Offline
                }
            }
            other => other,
        }
    }
}

/// Where ecca keeps its store, logs, deliveries and config: `--data-dir`, else `ECCA_HOME`,
/// else the platform's data directory.
pub fn resolve_data_dir(flag: Option<PathBuf>) -> Result<PathBuf, ConfigError> {
    if let Some(dir) = flag {
        return Ok(dir);
    }
    if let Some(dir) = std::env::var_os("ECCA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("dev", "ecca", "ecca")
        .map(|d| d.data_dir().to_path_buf())
        .ok_or_else(|| {
            ConfigError(
                "could not find a home directory for ecca's data; pass --data-dir DIR or set ECCA_HOME"
                    .into(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_file_keeps_defaults() {
        let c = Config::parse("[budgets]\ntask_usd = 2.5\n").unwrap();
        assert_eq!(c.task_budget_micros(), 2_500_000);
        assert_eq!(c.supervisor.concurrency, 4);
        assert_eq!(c.models.cheap, "claude-haiku-4-5");
    }

    #[test]
    fn price_override_wins() {
        let c = Config::parse("[prices.\"claude-haiku-4-5\"]\ninput = 2\noutput = 8\n").unwrap();
        let p = c.price_of("claude-haiku-4-5").unwrap();
        assert_eq!(
            (p.input, p.output, p.cache_read),
            (2_000_000, 8_000_000, 2_000_000)
        );
    }

    #[test]
    fn unknown_keys_and_unpriced_models_are_refused() {
        assert!(Config::parse("[budgets]\ntask_dollars = 2\n").is_err());
        let e = Config::parse("[models]\nwriter = \"mystery-1\"\n").unwrap_err();
        assert!(e.0.contains("mystery-1"), "{e}");
    }

    #[test]
    fn auto_provider_follows_keys() {
        let c = Config::default();
        assert_eq!(c.resolve_provider(&|_| None), ProviderKind::Offline);
        assert_eq!(
            c.resolve_provider(&|k| (k == "OPENAI_API_KEY").then(|| "sk".into())),
            ProviderKind::Openai
        );
    }
}

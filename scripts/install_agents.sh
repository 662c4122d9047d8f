#!/usr/bin/env bash
# Installs the coding-agent CLIs that ecca supervises, at the versions ecca was built
# against, into one directory that ecca (and nothing else) uses:
#   ${ECCA_AGENTS_DIR:-$HOME/.cache/ecca/agents}/node_modules/.bin/{claude,codex}
#   ${ECCA_AGENTS_DIR:-$HOME/.cache/ecca/agents}/aider-venv/bin/aider
# Pinned because ecca parses their output and speaks their wire formats; another version
# may change either. Re-running is cheap: an agent whose --version already matches is skipped.
# Usage: install_agents.sh [claude] [codex] [aider]   (no names: all three)
# One line per agent on stdout ("<agent>: installed|already present|failed: <reason>"),
# progress on stderr. One failure does not stop the others; the exit code is 1 if any failed.
# ECCA_PYTHON may name the interpreter for aider's venv (it needs Python >=3.10,<3.13).
set -euo pipefail

CLAUDE_VERSION=2.1.197
CODEX_VERSION=0.169.0
AIDER_VERSION=0.86.2

DIR="${ECCA_AGENTS_DIR:-$HOME/.cache/ecca/agents}"
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
LOG="$DIR/install.log"   # full npm/pip output, kept for diagnosing a failure
failed=0

progress() { printf '[install_agents %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
result() { printf '%s: %s\n' "$1" "$2"; }

# First x.y.z in `BIN --version`, or nothing if BIN is missing or fails. The timeout keeps a
# broken install from hanging the check. `codex --version` already writes helper links under
# $CODEX_HOME (default ~/.codex); pointing that inside $DIR leaves the user's home alone.
version_of() {
  [ -x "$1" ] || return 0
  mkdir -p "$DIR/codex-home"
  { CODEX_HOME="$DIR/codex-home" timeout 60 "$1" --version 2>/dev/null || true; } \
    | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n1 || true
}

# Runs a command with its output shown (stderr) and appended to $LOG; returns its status.
# These downloads are a few hundred MB, so the tools' own lines are the progress.
run_logged() {
  printf '\n== %s: %s\n' "$(date)" "$*" >> "$LOG"
  "$@" 2>&1 | tee -a "$LOG" >&2
}

# First telling error line of the latest command in $LOG, as a short reason on failure
# (npm's first lines are bare codes, so those are skipped).
last_error() {
  tac "$LOG" | sed '/^== /q' | tac | grep -vE '^npm error (code|syscall|errno) ' \
    | grep -m1 -E '^(npm error|ERROR)|rror:' | cut -c1-200 || true
}

# install_npm NAME PACKAGE VERSION SIZE_HINT
install_npm() {
  local name=$1 pkg=$2 want=$3 hint=$4 bin="$DIR/node_modules/.bin/$1" have
  have="$(version_of "$bin")"
  if [ "$have" = "$want" ]; then result "$name" "already present ($want)"; return; fi
  if ! command -v npm >/dev/null 2>&1; then
    result "$name" "failed: npm not found (install Node.js and npm)"; failed=1; return
  fi
  progress "$name: installing $pkg@$want${have:+ (found $have)}; $hint"
  local t0=$SECONDS
  # --save-exact: package.json in $DIR records the pin, so installing the other npm agent
  # later does not float this one. Audit/fund lookups are skipped: nothing to act on here.
  if ! run_logged npm install --prefix "$DIR" --save-exact --no-audit --no-fund \
      --loglevel=http "$pkg@$want"; then
    result "$name" "failed: npm install exited non-zero: $(last_error) (log: $LOG)"; failed=1; return
  fi
  have="$(version_of "$bin")"
  # Claude Code's postinstall puts its native binary in place; an npm that skips install
  # scripts (ignore-scripts, allowScripts) leaves a placeholder that only prints an error.
  local setup="$DIR/node_modules/$pkg/install.cjs"
  if [ "$have" != "$want" ] && [ -f "$setup" ]; then
    progress "$name: running its postinstall step ($setup)"
    run_logged node "$setup" || true
    have="$(version_of "$bin")"
  fi
  if [ "$have" = "$want" ]; then
    result "$name" "installed ($want, $((SECONDS - t0)) s)"
  else
    result "$name" "failed: installed, but '$bin --version' gives '${have:-nothing}', not $want (log: $LOG)"; failed=1
  fi
}

# aider-chat 0.86.2 supports Python >=3.10,<3.13 only.
supported_python() { "$1" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] < (3, 13))' 2>/dev/null; }

# The real executable of the first supported Python, or nothing. Candidates are run, not
# looked up: pyenv shims exist for versions that are not selected and fail when run.
pick_python() {
  local p
  for p in ${ECCA_PYTHON:-} python3.12 python3.11 python3.10 python3 /usr/bin/python3; do
    if supported_python "$p"; then "$p" -c 'import sys; print(sys.executable)'; return; fi
  done
}

install_aider() {
  local venv="$DIR/aider-venv" have py
  have="$(version_of "$venv/bin/aider")"
  if [ "$have" = "$AIDER_VERSION" ]; then result aider "already present ($AIDER_VERSION)"; return; fi
  py="$(pick_python)"
  if [ -z "$py" ]; then
    result aider "failed: no Python >=3.10,<3.13 found (set ECCA_PYTHON)"; failed=1; return
  fi
  progress "aider: installing aider-chat==$AIDER_VERSION with $py${have:+ (found $have)}; ~100 packages, 1-2 min"
  local t0=$SECONDS
  # A venv left half-made by an interrupted run, or made with an unsupported Python, is
  # rebuilt rather than repaired.
  if ! supported_python "$venv/bin/python" || ! "$venv/bin/python" -c 'import pip' 2>/dev/null; then
    rm -rf "$venv"
    if ! run_logged "$py" -m venv "$venv"; then
      result aider "failed: '$py -m venv' exited non-zero: $(last_error) (log: $LOG)"; failed=1; return
    fi
  fi
  if ! run_logged "$venv/bin/python" -m pip install --disable-pip-version-check --no-input \
      --progress-bar off "aider-chat==$AIDER_VERSION"; then
    result aider "failed: pip install exited non-zero: $(last_error) (log: $LOG)"; failed=1; return
  fi
  have="$(version_of "$venv/bin/aider")"
  if [ "$have" = "$AIDER_VERSION" ]; then
    result aider "installed ($AIDER_VERSION, $((SECONDS - t0)) s)"
  else
    result aider "failed: installed, but 'aider --version' gives '${have:-nothing}', not $AIDER_VERSION (log: $LOG)"; failed=1
  fi
}

# Which agents: the names given (claude, codex, aider), or all three.
wanted="${*:-claude codex aider}"
progress "agents directory: $DIR; installing: $wanted"
for agent in $wanted; do
  case "$agent" in
    claude) install_npm claude @anthropic-ai/claude-code "$CLAUDE_VERSION" "native binary, ~80 MB download" ;;
    codex) install_npm codex @openai/codex "$CODEX_VERSION" "native binary, ~180 MB download" ;;
    aider) install_aider ;;
    *) result "$agent" "failed: not an agent ecca installs (claude, codex or aider)"; failed=1 ;;
  esac
done
exit "$failed"

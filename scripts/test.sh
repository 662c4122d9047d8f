#!/usr/bin/env bash
# Every check ecca has, on a fresh machine: installs and starts what the tests need (a
# Docker engine, ruff, the sandbox image), then formatting, lints and the whole test suite.
# CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }
fail() { printf 'error: %s\n' "$*" >&2; exit 1; }
root_on_debian() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }
apt_updated=no
apt_install() {
  root_on_debian || fail "the tests need $*; install them (sudo apt-get install $*) and run again"
  if [ "$apt_updated" = no ]; then apt-get update -qq; apt_updated=yes; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Debian packages: git (client-github, the project), Debian's python3 and node (the
# sandbox image is assembled from them), npm (the node tools the sandbox checks TypeScript
# and React Native with), ldd (libc-bin) to find their libraries.
missing=()
command -v git >/dev/null 2>&1 || missing+=(git)
[ -x /usr/bin/python3 ] || missing+=(python3)
[ -x /usr/bin/node ] || missing+=(nodejs)
# npm installs the sandbox's TypeScript tools (pinned, cached) at `ecca images build`.
command -v npm >/dev/null 2>&1 || missing+=(npm)
# docker-compose (1.29) runs compose/compose.yaml in the containers tests; pip for Debian's
# python3 installs the Python MCP SDK their third-party server image is built from.
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
/usr/bin/python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  apt_install "${missing[@]}"
fi

# ruff for the linter server.
if ! command -v ruff >/dev/null 2>&1; then
  say "installing ruff"
  python3 -m pip install --quiet ruff 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages ruff \
    || fail "could not install ruff with pip; install it (pip install ruff) and run again"
  hash -r
  command -v ruff >/dev/null 2>&1 || fail "ruff was installed but is not on PATH; add pip's bin directory to PATH"
fi

# A Docker engine for the sandbox. Where none answers and this is Debian as root, install
# Debian's docker.io and start dockerd; the tests never skip Docker silently.
if ! docker info >/dev/null 2>&1; then
  if root_on_debian; then
    command -v dockerd >/dev/null 2>&1 || { say "installing docker.io"; apt_install docker.io; }
    say "starting dockerd (log: /tmp/ecca-dockerd.log)"
    nohup dockerd >/tmp/ecca-dockerd.log 2>&1 &
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  fi
  docker info >/dev/null 2>&1 \
    || fail "no Docker engine answers and none could be started here (see /tmp/ecca-dockerd.log); the sandbox tests need one"
fi

if ! command -v cargo >/dev/null 2>&1; then
  fail "the tests need a Rust toolchain (cargo); install one with rustup and run again"
fi
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^${component}"; then
    say "adding the ${component} component"
    rustup component add "${component}"
  fi
done

# A build from a clean checkout gains nothing from incremental caches, which took 1.6 GB
# of the target directory here; a full disk makes the linker die with SIGBUS, so say early
# when space is short.
export CARGO_INCREMENTAL=0
free_kib=$(df -Pk . | awk 'NR == 2 { print $4 }')
if [ "${free_kib:-0}" -lt $((4 * 1024 * 1024)) ]; then
  printf 'warning: only %s MiB free here; the build and the tests need about 4 GiB (target/ and the Docker images)\n' "$((free_kib / 1024))" >&2
fi

say "formatting (cargo fmt --check)"
cargo fmt --all --check

say "lints (cargo clippy --all-targets -D warnings)"
cargo clippy --locked --all-targets -- -D warnings

say "the images (ecca images build --if-missing)"
cargo build --locked --quiet
target/debug/ecca images build --if-missing

# The third-party coding agents the agent tests drive, at their pinned versions (npm and
# PyPI; kept under ~/.cache/ecca/agents, so a second run only checks versions).
say "the coding agents (scripts/install_agents.sh: Claude Code, Codex CLI, Aider)"
scripts/install_agents.sh claude codex aider \
  || fail "could not install the coding agents (above); their tests need them"

say "tests (cargo test)"
cargo test --locked

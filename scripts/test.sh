#!/usr/bin/env bash
# Every check ecca has, on a fresh machine: installs what the tests need, then formatting,
# lints and the whole test suite. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }

# Debian packages the tests use: python3 runs the code ecca delivers, git is the
# project's own VCS. Installed only where missing, and only where we may.
missing=()
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v git >/dev/null 2>&1 || missing+=(git)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  else
    echo "the tests need ${missing[*]}; install them (for example: sudo apt-get install ${missing[*]}) and run again" >&2
    exit 1
  fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "the tests need a Rust toolchain (cargo); install one with rustup and run again" >&2
  exit 1
fi
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^${component}"; then
    say "adding the ${component} component"
    rustup component add "${component}"
  fi
done

say "formatting (cargo fmt --check)"
cargo fmt --all --check

say "lints (cargo clippy --all-targets -D warnings)"
cargo clippy --locked --all-targets -- -D warnings

say "tests (cargo test)"
cargo test --locked

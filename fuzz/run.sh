#!/usr/bin/env bash
# Runs every cargo-fuzz target of Tessera for a bounded time, one after the other.
#
#   fuzz/run.sh          # nightly-style: 300 s per target
#   fuzz/run.sh 15       # the smoke run of .ci/run
#
# Needs the nightly toolchain (`rustup toolchain list`) and cargo-fuzz
# (`cargo install cargo-fuzz --locked`). Inputs found are kept between runs in
# $FUZZ_CORPUS_DIR (default ~/.cache/tessera-fuzz-corpus/TARGET); fuzz/seeds/TARGET holds the
# committed starting inputs. A crash stops the run with the input saved under
# fuzz/artifacts/TARGET/: reproduce it with `cargo +nightly fuzz run TARGET FILE`, then add the
# input as a regression test beside the parser's unit tests before fixing it.
set -euo pipefail
cd "$(dirname "$0")"

per_target="${1:-300}"
target_dir="${FUZZ_TARGET_DIR:-$HOME/.cache/tessera-fuzz-target}"
corpus_root="${FUZZ_CORPUS_DIR:-$HOME/.cache/tessera-fuzz-corpus}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

rustup run nightly rustc --version >/dev/null
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2; exit 1; }

# Safe Rust throughout (no `unsafe` in the workspace), so no sanitizer: the targets check
# panics and the invariants they assert, and build and run several times faster.
for target in $(cargo +nightly fuzz list); do
  mkdir -p "$corpus_root/$target"
  echo "=== $target (${per_target}s)"
  status=0
  cargo +nightly fuzz run --sanitizer none --target-dir "$target_dir" "$target" \
    "$corpus_root/$target" "seeds/$target" -- \
    -max_total_time="$per_target" -max_len=8192 -print_final_stats=1 >"$log" 2>&1 || status=$?
  # Only the summary and a failure's report, not libFuzzer's progress lines.
  grep -E '^(stat::number_of_executed_units|SUMMARY|thread|panicked|.*deadly signal|Error:)' "$log" \
    | grep -v '^Error: Fuzz target exited' || true
  if [ "$status" -ne 0 ]; then
    grep -A3 'panicked' "$log" >&2 || true
    echo "fuzz target $target failed (exit $status); the input is in fuzz/artifacts/$target" >&2
    exit 1
  fi
done

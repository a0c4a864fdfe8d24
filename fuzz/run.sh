#!/usr/bin/env bash
# Runs every cargo-fuzz target of Tessera for a bounded time, one after the other.
#
#   fuzz/run.sh          # nightly-style: 300 s per target, the corpus kept between runs
#   fuzz/run.sh 60       # 60 s per target
#   fuzz/run.sh smoke    # .ci/run's gate: the committed seeds plus a fixed number of
#                        # mutations from a fixed random seed, in a fresh corpus, so the
#                        # same commit always gives the same verdict (a time-bounded run
#                        # may find an old bug on any day and would turn CI red at random)
#
# Needs the nightly toolchain (`rustup toolchain list`) and cargo-fuzz
# (`cargo install cargo-fuzz --locked`). Inputs found are kept between runs in
# $FUZZ_CORPUS_DIR (default ~/.cache/tessera-fuzz-corpus/TARGET); fuzz/seeds/TARGET holds the
# committed starting inputs. A crash stops the run with the input saved under
# fuzz/artifacts/TARGET/: reproduce it with `cargo +nightly fuzz run TARGET FILE`, then add the
# input as a regression test beside the parser's unit tests before fixing it.
set -euo pipefail
cd "$(dirname "$0")"

target_dir="${FUZZ_TARGET_DIR:-$HOME/.cache/tessera-fuzz-target}"
log="$(mktemp)"
if [ "${1:-}" = smoke ]; then
  corpus_root="$(mktemp -d)"
  budget=(-seed=1 -runs=200000)
  trap 'rm -rf "$log" "$corpus_root"' EXIT
else
  corpus_root="${FUZZ_CORPUS_DIR:-$HOME/.cache/tessera-fuzz-corpus}"
  budget=(-max_total_time="${1:-300}")
  trap 'rm -f "$log"' EXIT
fi

rustup run nightly rustc --version >/dev/null
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2; exit 1; }

# Safe Rust throughout (no `unsafe` in the workspace), so no sanitizer: the targets check
# panics and the invariants they assert, and build and run several times faster.
for target in $(cargo +nightly fuzz list); do
  mkdir -p "$corpus_root/$target"
  echo "=== $target (${budget[*]})"
  status=0
  cargo +nightly fuzz run --sanitizer none --target-dir "$target_dir" "$target" \
    "$corpus_root/$target" "seeds/$target" -- \
    "${budget[@]}" -max_len=8192 -print_final_stats=1 >"$log" 2>&1 || status=$?
  # Only the summary and a failure's report, not libFuzzer's progress lines.
  grep -E '^(stat::number_of_executed_units|SUMMARY|thread|panicked|.*deadly signal|Error:)' "$log" \
    | grep -v '^Error: Fuzz target exited' || true
  if [ "$status" -ne 0 ]; then
    grep -A3 'panicked' "$log" >&2 || true
    echo "fuzz target $target failed (exit $status); the input is in fuzz/artifacts/$target" >&2
    exit 1
  fi
done

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

rustup run nightly rustc --version >/dev/null
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2; exit 1; }

# Safe Rust throughout (no `unsafe` in the workspace), so no sanitizer: the targets check
# panics and the invariants they assert, and build and run several times faster.
for target in $(cargo +nightly fuzz list); do
  mkdir -p "$corpus_root/$target"
  echo "=== $target (${per_target}s)"
  cargo +nightly fuzz run --sanitizer none --target-dir "$target_dir" "$target" \
    "$corpus_root/$target" "seeds/$target" -- \
    -max_total_time="$per_target" -max_len=8192 -print_final_stats=1 2>&1 \
    | grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|==|SUMMARY|thread|panicked|Test unit written|.*deadly signal)' || true
  # grep hides libFuzzer's progress lines; the exit status that matters is cargo-fuzz's.
  [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "fuzz target $target failed; see fuzz/artifacts/$target" >&2; exit 1; }
done

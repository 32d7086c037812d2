#!/usr/bin/env bash
# The newcomer's path, as CI runs it on a clean clone: README's first command exactly as the
# README prints it, then a prediction with `cog run` in the example (the obvious next step),
# so that what a new user does first never breaks; the fixture tests then run after it, on the
# tree it left behind (.cog/, hello.tar, locks).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# The README's first command: the first line of its first ```sh block that runs `cargo build`.
first=$(awk '/^```sh/{inside=1; next} /^```/{inside=0} inside && /cargo build/ {print; exit}' README.md)
[[ -n "$first" ]] || { echo "newcomer: no build command found in README.md" >&2; exit 1; }
echo "newcomer: $first"
(bash -euo pipefail -c "$first")

cd "$root/examples/hello"
out=$("$root/target/release/cog" run -i text=newcomer 2>run.log) || { cat run.log >&2; exit 1; }
rm -f run.log
[[ "$out" == "hello newcomer" ]] || { echo "newcomer: cog run printed ${out@Q}" >&2; exit 1; }
echo "newcomer: cog run -> $out"

#!/bin/sh
# Runs one libFuzzer target for a bounded time on a scratch copy of its
# seed corpus; fails on any crash, leak or sanitizer report, and keeps the
# crashing input in the build folder.
# usage: run-fuzzer.sh FUZZER SEED_DIR SECONDS ARTIFACT_DIR
set -eu
fuzzer=$1 seeds=$2 seconds=$3 artifacts=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$artifacts"
cp "$seeds"/* "$work"/ 2>/dev/null || true
exec "$fuzzer" -error_exitcode=1 -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
	-print_final_stats=1 -artifact_prefix="$artifacts/" "$work"

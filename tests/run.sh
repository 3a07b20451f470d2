#!/bin/bash
# The whole suite: installs what is missing, then builds and tests three
# ways: a normal build (warnings are errors), an AddressSanitizer +
# UndefinedBehaviorSanitizer build, and clang's libFuzzer build, whose
# targets each run for a bounded time; the style suite (tests/banned.sh:
# no function STYLE.md bans) runs in each. Ends with one line counting the
# results of all three, read from meson's testlog.json files.
set -u
cd "$(dirname "$0")/.." || exit 1
bash .ci/install-deps.sh || exit 1

export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1
fuzz_seconds=${FUZZ_SECONDS:-30}
status=0

setup() { # setup DIR [meson options...]
	local dir=$1; shift
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi
}

run_build() { # run_build DIR SUITE-ARGS...: builds, runs, keeps going on failure
	local dir=$1; shift
	rm -f "$dir/meson-logs/testlog.json"
	mkdir -p "$dir"
	if ! ninja -C "$dir" >"$dir/ninja-output.log" 2>&1; then
		cat "$dir/ninja-output.log"
		echo "build failed in $dir" >&2
		status=1
		return
	fi
	meson test -C "$dir" --print-errorlogs "$@" || status=1
}

echo "== normal build"
setup build --werror && run_build build
echo "== AddressSanitizer + UndefinedBehaviorSanitizer build"
setup build-asan --werror -Db_sanitize=address,undefined -Db_lundef=false \
	&& run_build build-asan
echo "== libFuzzer build (${fuzz_seconds} s per target)"
CC=clang setup build-fuzz -Dfuzzers=true -Db_sanitize=address,undefined \
	-Db_lundef=false -Dfuzz_seconds="$fuzz_seconds" \
	&& run_build build-fuzz --suite fuzz --num-processes 2

python3 - build build-asan build-fuzz <<'PY' || status=1
import json, os, sys
passed = failed = skipped = 0
for d in sys.argv[1:]:
    log = os.path.join(d, "meson-logs", "testlog.json")
    if not os.path.exists(log):
        print(f"{d}: no test results (the build failed)")
        failed += 1
        continue
    for line in open(log):
        r = json.loads(line)["result"]
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed else 0)
PY
exit $status

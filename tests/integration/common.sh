# Sourced by every integration test: a fresh network folder, the
# network functions, assertions, and cleanup that stops every process
# the test started (by PID) and removes the folder.
set -u
: "${BIN:?BIN must name the build folder}" "${SRC:?SRC must name the source folder}"
BIN=$(realpath "$BIN")
NET=$(mktemp -d /tmp/enlace-net-XXXXXX)
. "$SRC/examples/lib/network.sh"
checks=0 failed=0
cleanup() {
	stop_all >/dev/null 2>&1
	if [ "$failed" != 0 ] || [ "${KEEP_NET:-}" = 1 ]; then
		for f in "$NET"/*/log; do echo "--- $f"; tail -n 30 "$f"; done
	fi
	[ "${KEEP_NET:-}" = 1 ] || rm -rf "$NET"
}
trap cleanup EXIT
ok() { # ok "what" command...
	checks=$((checks + 1))
	local what=$1
	shift
	if ! "$@"; then
		failed=$((failed + 1))
		echo "FAIL: $what"
	fi
}
is() { # is "what" GOT WANT
	checks=$((checks + 1))
	if [ "$2" != "$3" ]; then
		failed=$((failed + 1))
		echo "FAIL: $1: got '$2', want '$3'"
	fi
}
finish() {
	local d
	# Stop gracefully, so that a sanitizer build reports leaks, then look
	# for any sanitizer report in every process's log.
	for d in "$NET"/*/; do
		[ -f "$d/agent.conf" ] && stop_agent "$(basename "$d")" TERM
	done
	stop_broker TERM
	for f in "$NET"/*/log; do
		if grep -q -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$f"; then
			failed=$((failed + 1))
			echo "FAIL: sanitizer report in $f"
			grep -A 20 -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$f" | head -60
		fi
	done
	echo "$checks checks, $failed failed"
	[ "$failed" = 0 ]
	exit $?
}
# acked_count SENDER ID: recipients that acknowledged message ID
acked_count() {
	enl "$1" receipts --json "$2" 2>/dev/null | grep -o '"state":"acknowledged"' | wc -l
}
# acked_by SENDER ID [N]: exactly N (1) recipients acknowledged message ID
acked_by() {
	[ "$(acked_count "$1" "$2")" = "${3:-1}" ]
}
# received_times ID MSGID: how many times ID's agent logged receiving it
received_times() {
	grep -c "received message $2" "$NET/$1/log" 2>/dev/null || true
}
# preloaded FOLDER VAR=VALUE... command...: runs command (a function of
# network.sh, say) under the diskfull module (LD_PRELOAD), its switches
# (tests/integration/diskfull.c) set as given and acting on FOLDER. In
# this shell, not a subshell: a process it starts stays this shell's child.
preloaded() {
	: "${DISKFULL:?DISKFULL must name the diskfull module}"
	local -x ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"
	local -x LD_PRELOAD=$DISKFULL ENLACE_DISKFULL_DIR="$1"
	shift
	while [ $# -gt 0 ] && [ "${1#*=}" != "$1" ]; do
		local -x "$1"
		shift
	done
	"$@"
}

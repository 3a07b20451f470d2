#!/bin/bash
# What the audit log costs the broker: the same load (N senders, 1 KiB,
# as fast as they go, recipients afterwards) against the broker as built,
# and against one built with -Dbench_without_audit_log=true (it appends
# nothing and signs one checkpoint only), alternately, ROUNDS times.
#
#   bash tests/bench/bench_log_overhead.sh [COUNT] [SENDERS] [ROUNDS]
set -eu
cd "$(dirname "$0")/../.."
SRC=$PWD
COUNT=${1:-20000} NS=${2:-16} ROUNDS=${3:-3}
WITH=$(realpath "${BIN:-build}")
[ -f build-nolog/build.ninja ] || meson setup build-nolog -Dbench_without_audit_log=true >/dev/null
WITHOUT=$(realpath build-nolog)
for b in "$WITH" "$WITHOUT"; do
	ninja -C "$b" tests/bench/loadgen broker/enlace-broker keys/enlace-keys >/dev/null
done
run() { # run BUILD: prints submit->receipt msg/s
	local NET BIN=$1 specs=() args=() i
	NET=$(mktemp -d /tmp/enlace-bench-XXXXXX)
	. examples/lib/network.sh
	for i in $(seq 1 "$NS"); do specs+=("AR-S$i:FIU"); args+=(--sender "$NET/AR-S$i/key"); done
	specs+=("BR-R1:POLICE"); args+=(--recipient "$NET/BR-R1/key")
	FETCH_WAIT=5s net_init "${specs[@]}" >/dev/null
	start_broker
	"$BIN/tests/bench/loadgen" --url "tcp://127.0.0.1:$BROKER_PORT" --directory "$NET/directory" \
		"${args[@]}" --count "$COUNT" --broker-pid "$(cat "$NET/broker/pid")" --phased \
		| sed -n 's/^throughput submit->receipt *\([0-9]*\) msg\/s.*/\1/p'
	stop_all >/dev/null 2>&1
	rm -rf "$NET"
}
echo "$COUNT messages, $NS senders, submit->receipt msg/s"
w=0 wo=0
for r in $(seq 1 "$ROUNDS"); do
	a=$(run "$WITH") b=$(run "$WITHOUT")
	echo "round $r: with the audit log $a, without $b"
	w=$((w + a)) wo=$((wo + b))
done
python3 -c "w, wo = $w / $ROUNDS, $wo / $ROUNDS; print(f'mean: with {w:.0f}, without {wo:.0f}: the log costs {100 * (1 - w / wo):.1f}% of the throughput')"

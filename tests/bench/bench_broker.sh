#!/bin/bash
# The broker benchmark: a real broker on loopback, N sender and M
# recipient sessions, 1 KiB payloads. Prints what loadgen measures (see
# loadgen.c), then a 50 MiB attachment (three times) from `enlace send` to the
# recipient's inbox through real agents.
#
#   bash tests/bench/bench_broker.sh [COUNT] [SENDERS] [RECIPIENTS]
# Environment: BIN (build folder, default ./build), RATE (offered msg/s).
set -eu
cd "$(dirname "$0")/../.."
SRC=$PWD
BIN=$(realpath "${BIN:-build}")
COUNT=${1:-20000} NS=${2:-16} NR=${3:-4}
NET=$(mktemp -d /tmp/enlace-bench-XXXXXX)
. examples/lib/network.sh
trap 'stop_all >/dev/null 2>&1; rm -rf "$NET"' EXIT
ninja -C "$BIN" tests/bench/loadgen client/enlace client/enlace-agent broker/enlace-broker >/dev/null
specs=()
for i in $(seq 1 "$NS"); do specs+=("AR-S$i:FIU"); done
for i in $(seq 1 "$NR"); do specs+=("BR-R$i:POLICE"); done
specs+=("US-BIG:FIU" "CO-BIG:PROSECUTOR")
FETCH_WAIT=5s net_init "${specs[@]}"
start_broker
args=()
for i in $(seq 1 "$NS"); do args+=(--sender "$NET/AR-S$i/key"); done
for i in $(seq 1 "$NR"); do args+=(--recipient "$NET/BR-R$i/key"); done
echo "== $COUNT messages, as fast as the senders go; recipients fetch afterwards"
"$BIN/tests/bench/loadgen" --url "tcp://127.0.0.1:$BROKER_PORT" --directory "$NET/directory" \
	"${args[@]}" --count "$COUNT" --broker-pid "$(cat "$NET/broker/pid")" --ceiling-dir "$NET" \
	--phased
echo
echo "== $COUNT messages, senders and recipients at once"
"$BIN/tests/bench/loadgen" --url "tcp://127.0.0.1:$BROKER_PORT" --directory "$NET/directory" \
	"${args[@]}" --count "$COUNT" --broker-pid "$(cat "$NET/broker/pid")"
echo
echo "== a lone client: 1 sender, 2000 messages (its recipient fetches afterwards)"
"$BIN/tests/bench/loadgen" --url "tcp://127.0.0.1:$BROKER_PORT" --directory "$NET/directory" \
	--sender "$NET/AR-S1/key" --recipient "$NET/BR-R1/key" --count 2000 --phased
echo
echo "== offered ${RATE:-2000} msg/s for 10 s"
"$BIN/tests/bench/loadgen" --url "tcp://127.0.0.1:$BROKER_PORT" --directory "$NET/directory" \
	"${args[@]}" --count $((${RATE:-2000} * 10)) --rate "${RATE:-2000}"
echo
echo "== a 50 MiB attachment, enlace send to the recipient's inbox (3 times)"
start_agent US-BIG
start_agent CO-BIG
head -c $((50 * 1024 * 1024 - 4096)) /dev/urandom > "$NET/big.bin"
for round in 1 2 3; do
	t0=$(date +%s%N)
	id=$(enl US-BIG send --to CO-BIG --text "large $round" --attach "$NET/big.bin")
	t1=$(date +%s%N)
	wait_for 120 "the inbox" test -e "$NET/CO-BIG/spool/inbox/$id.env"
	t2=$(date +%s%N)
	echo "enlace send returned (durable in the outbox) after $(((t1 - t0) / 1000000)) ms;" \
		"in the recipient's inbox (verified, decrypted, durable) after $(((t2 - t0) / 1000000)) ms"
done

#!/bin/bash
# Sustained load on a real broker (the benchmark's load generator, 8,000
# messages from 8 senders to 4 recipients at once): every message is
# receipted and acknowledged; the store's write-ahead log starts over
# instead of growing with the load (without that it reached about 19 KiB
# a message, over 120 MiB here); the audit log, published by its own
# thread while the load ran, verifies whole after a clean stop and holds
# exactly the store's journal.
. "$(dirname "$0")/common.sh"
specs=()
for i in 1 2 3 4 5 6 7 8; do specs+=("AR-S$i:FIU"); done
for i in 1 2 3 4; do specs+=("BR-R$i:POLICE"); done
FETCH_WAIT=2s net_init "${specs[@]}"
start_broker || finish
args=()
for i in 1 2 3 4 5 6 7 8; do args+=(--sender "$NET/AR-S$i/key"); done
for i in 1 2 3 4; do args+=(--recipient "$NET/BR-R$i/key"); done
"$BIN/tests/bench/loadgen" --url "tcp://127.0.0.1:$BROKER_PORT" --directory "$NET/directory" \
	"${args[@]}" --count 8000 > "$NET/loadgen.out" 2>&1
ok "every message receipted and acknowledged" \
	grep -q "receipted 8000, acknowledged 8000, errors 0" "$NET/loadgen.out"
wal=$(stat -c %s "$NET/broker/data/store.sqlite-wal")
ok "the WAL stayed under 64 MiB ($wal bytes)" test "$wal" -lt $((64 * 1024 * 1024))
stop_broker
ok "no store error at the broker" sh -c "! grep -q 'store:' '$NET/broker/log'"
entries=$(sqlite3 "$NET/broker/data/store.sqlite" 'select count(*) from audit')
A="$BIN/client/enlace-audit verify $NET/broker/data/log --broker-pub $NET/broker/key/card"
ok "the published log verifies" $A
$A --json > "$NET/audit.json"
ok "  ... whole: the $entries entries of the store's journal" python3 -c \
	"import json; d=json.load(open('$NET/audit.json')); assert d['valid'] and d['size'] == $entries, d"
finish

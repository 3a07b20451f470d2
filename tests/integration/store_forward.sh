#!/bin/bash
# Store and forward: a recipient whose agent is down when the message is
# sent receives it when it starts; a sender whose broker is away keeps the
# message in its outbox and sends it when the broker comes. A message
# that expires while its recipient is away is marked EXPIRED by the broker
# without waiting for a fetch, and never handed over.
. "$(dirname "$0")/common.sh"
FETCH_WAIT=2s net_init AR-UIF:FIU BR-PF:POLICE
start_broker || finish
start_agent AR-UIF || finish
id=$(enl AR-UIF send --wait --json --to BR-PF --text "while you were away" | grep -o '"message_id":"[0-9a-f]*"' | cut -d'"' -f4)
ok "receipted while BR-PF is down" test ${#id} = 32
enl AR-UIF receipts --json $id > "$NET/r.json"
ok "state queued" grep -q '"state":"queued"' "$NET/r.json"
# ... and one that expires before BR-PF comes: it is never handed over.
exp=$("$BIN/tests/rawclient" expiring "tcp://127.0.0.1:$BROKER_PORT" "$NET/AR-UIF/key" \
	"$NET/directory" BR-PF 2 | tail -n 1)
ok "a message that expires in 2 s is receipted" test ${#exp} = 32
# The broker marks it expired without waiting for BR-PF to come and fetch.
ok "the expired one is marked expired while BR-PF is still away" wait_for 20 "expired" sh -c \
	"ENLACE_SOCKET=$NET/AR-UIF/agent.sock $BIN/client/enlace receipts --json $exp | grep -q '\"state\":\"expired\"'"
ok "  ... and EXPIRED in the broker's store" test \
	"$(sqlite3 "$NET/broker/data/store.sqlite" "select state from deliveries d join messages m on m.seq = d.msg where hex(m.id) = upper('$exp')")" = 7
enl AR-UIF receipts $exp > "$NET/exp.txt"
ok "  ... saying when" grep -q "expired  .*the message expired at .*, before BR-PF fetched it" "$NET/exp.txt"
is "  ... the first one still waits" "$(enl AR-UIF receipts --json $id | grep -o '"state":"[a-z]*"')" '"state":"queued"'
start_agent BR-PF || finish
ok "BR-PF receives it on start" wait_for 20 "inbox" test -e "$NET/BR-PF/spool/inbox/$id.env"
ok "  ... never handed over" sh -c "! ls '$NET/BR-PF/spool/inbox' | grep -q '$exp' &&
	[ -z \"\$(ls '$NET/BR-PF/spool/refused')\" ] && ! grep -q REFUSED '$NET/BR-PF/log'"
ok "  ... and EXPIRED in the audit log" wait_for 20 "the log" sh -c "$BIN/client/enlace-audit trail $exp \
	--log $NET/broker/data/log --directory $NET/directory --authority-pub $NET/authority/authority.pub | grep -q ' EXPIRED .*for BR-PF'"
ok "acknowledged" wait_for 20 "ack" sh -c "ENLACE_SOCKET=$NET/AR-UIF/agent.sock $BIN/client/enlace receipts $id | grep -q acknowledged"

# A broker that takes requests but does not answer (stopped): a send that
# waits for its receipt holds up no other command, and `receipts` answers
# with the receipt kept at sending time, saying so.
outboxed() { grep -c "in the outbox" "$NET/AR-UIF/log"; }
before=$(outboxed)
kill -STOP "$(cat "$NET/broker/pid")"
(enl AR-UIF send --wait --to BR-PF --text "to a frozen broker" > "$NET/frozen.out" 2>&1
 echo $? > "$NET/frozen.rc") &
ok "a send --wait is waiting" wait_for 10 "the send" sh -c "[ \$(grep -c 'in the outbox' '$NET/AR-UIF/log') -gt $before ]"
ok "  ... meanwhile status answers" eval "enl AR-UIF status > '$NET/status2.txt'; [ \$? -le 1 ] && test -s '$NET/status2.txt'"
enl AR-UIF receipts $id > "$NET/kept.txt" 2>&1
ok "  ... and receipts too, from the receipt kept" grep -q "this is the receipt kept when the message was sent" "$NET/kept.txt"
ok "  ... which verifies" grep -q "receipt signature: VERIFIED" "$NET/kept.txt"
kill -CONT "$(cat "$NET/broker/pid")"
ok "the waiting send gets its receipt once the broker answers" wait_for 70 "the send" test -s "$NET/frozen.rc"
is "  ... and succeeds" "$(cat "$NET/frozen.rc")" 0
ok "  ... printing the receipt" grep -q "receipt signature: VERIFIED" "$NET/frozen.out"

# The broker away: the message waits in the outbox.
stop_broker TERM
id2=$(enl AR-UIF send --to BR-PF --text "broker away")
ok "accepted into the outbox" test -e "$NET/AR-UIF/spool/outbox/$id2.env"
enl AR-UIF status > "$NET/status.txt"
ok "status says not connected" wait_for 15 "disconnected" sh -c "ENLACE_SOCKET=$NET/AR-UIF/agent.sock $BIN/client/enlace status | grep -q 'NOT CONNECTED'"
enl AR-UIF status > /dev/null
is "  ... and exits 1" $? 1
# --wait --timeout with the broker away: it gives up in time, printing the
# id and saying the message is queued (a script then knows not to send it
# again), and the message stays in the outbox
t0=$(date +%s%N)
enl AR-UIF send --to BR-PF --text "broker away, waited for" --wait --timeout 2s \
	> "$NET/timeout.out" 2> "$NET/timeout.err"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
is "send --wait --timeout 2s with the broker away exits 1" "$rc" 1
ok "  ... after about 2 s, not 60 ($ms ms)" test "$ms" -ge 1900 -a "$ms" -lt 10000
waited=$(cat "$NET/timeout.out")
ok "  ... printing the message id" test ${#waited} = 32
ok "  ... saying it is queued in the outbox" grep -q "message $waited is queued in the agent's outbox" "$NET/timeout.err"
ok "  ... where it is" test -e "$NET/AR-UIF/spool/outbox/$waited.env"
enl AR-UIF send --to BR-PF --text x --timeout 2s > /dev/null 2> "$NET/timeout-usage.err"
is "--timeout without --wait is a usage error" $? 2
enl AR-UIF send --to BR-PF --text x --wait --timeout 2h > /dev/null 2>> "$NET/timeout-usage.err"
is "--timeout over 1 h is a usage error" $? 2
# ... and more after it: they wait together, and go in the order they were sent
order=("$id2" "$waited")
for i in 1 2 3 4 5; do order+=("$(enl AR-UIF send --to BR-PF --text "broker away, then $i")"); done
times=$(for id in "${order[@]}"; do stat -c '%.9Y' "$NET/AR-UIF/spool/outbox/$id.env"; done)
is "their files' times are strictly increasing, in that order" \
	"$(printf '%s\n' "$times" | sort -u -n | tr '\n' ' ')" "$(printf '%s\n' "$times" | tr '\n' ' ')"
start_broker || finish
ok "sent once the broker is back" wait_for 30 "sent" test -e "$NET/AR-UIF/spool/sent/$id2.receipt"
ok "and delivered" wait_for 30 "delivered" test -e "$NET/BR-PF/spool/inbox/$id2.env"
ok "all seven delivered" wait_for 30 "all delivered" test -e "$NET/BR-PF/spool/inbox/${order[6]}.env"
is "submitted in the order they were sent" \
	"$(grep -o "message [0-9a-f]* receipted" "$NET/AR-UIF/log" | cut -d' ' -f2 | tail -n 7 | tr '\n' ' ')" \
	"$(printf '%s ' "${order[@]}")"
is "received in that order" \
	"$(grep -o "received message [0-9a-f]*" "$NET/BR-PF/log" | cut -d' ' -f3 | tail -n 7 | tr '\n' ' ')" \
	"$(printf '%s ' "${order[@]}")"

# A large message (over 1 MiB) is kept by the broker in a file of its own,
# across a restart; a file that no stored message names is removed.
stop_agent BR-PF TERM
head -c $((3 * 1024 * 1024)) /dev/urandom > "$NET/scan.bin"
id3=$(enl AR-UIF send --to BR-PF --text "large" --attach "$NET/scan.bin" --wait --json | grep -o '"message_id":"[0-9a-f]*"' | cut -d'"' -f4)
ok "the large message is receipted" test ${#id3} = 32
ok "  ... kept in its own file" test -s "$NET/broker/data/blobs/$id3"
is "  ... and not in the database" "$(sqlite3 "$NET/broker/data/store.sqlite" "select length(envelope) from messages where hex(id) = upper('$id3')")" 0
# ... and two that expire in 8 s, one of them large, while BR-PF is away and
# the store is turned into an earlier build's (deliveries without expiry)
exp2=$("$BIN/tests/rawclient" expiring "tcp://127.0.0.1:$BROKER_PORT" "$NET/AR-UIF/key" \
	"$NET/directory" BR-PF 8 | tail -n 1)
exp3=$("$BIN/tests/rawclient" expiring "tcp://127.0.0.1:$BROKER_PORT" "$NET/AR-UIF/key" \
	"$NET/directory" BR-PF 8 $((2 * 1024 * 1024)) | tail -n 1)
ok "two that expire soon are receipted, the large one in a file" \
	test ${#exp2} = 32 -a ${#exp3} = 32 -a -s "$NET/broker/data/blobs/$exp3"
stop_broker TERM
printf 'half-written' > "$NET/broker/data/blobs/00112233445566778899aabbccddeeff"
# a store as an earlier build left it: deliveries without their expiry
sqlite3 "$NET/broker/data/store.sqlite" "DROP INDEX deliveries_expiring;
	ALTER TABLE deliveries DROP COLUMN expires_at;"
start_broker || finish
ok "an orphan file is removed at start" test ! -e "$NET/broker/data/blobs/00112233445566778899aabbccddeeff"
ok "a store of an earlier build is brought up to date" \
	grep -q "deliveries now keep their message's expiry" "$NET/broker/log"
ok "  ... with the expiry index" test "$(sqlite3 "$NET/broker/data/store.sqlite" \
	"select count(*) from sqlite_master where name = 'deliveries_expiring'")" = 1
expiring() { # how many of exp2 and exp3 have their expiry, and in state $1 if given
	sqlite3 "$NET/broker/data/store.sqlite" "select count(*) from deliveries d join messages m
		on m.seq = d.msg where hex(m.id) in (upper('$exp2'), upper('$exp3'))
		and d.expires_at > 0 ${1:+and d.state = $1}"
}
is "  ... and the expiry of deliveries stored before, read from their headers" "$(expiring)" 2
swept() { test "$(expiring 7)" = 2; }
ok "  ... so that both are marked EXPIRED while BR-PF is still away" wait_for 30 "swept" swept
start_agent BR-PF || finish
ok "the large message is delivered after the restart" wait_for 30 "large" test -e "$NET/BR-PF/spool/inbox/$id3.env"
enl BR-PF read --save "$NET/saved" "$id3" > /dev/null
ok "  ... intact" cmp "$NET/scan.bin" "$NET/saved/scan.bin"
finish

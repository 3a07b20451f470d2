#!/bin/bash
# The broker killed with SIGKILL while messages are queued and while
# batches are being written, then restarted, 20 times over: every message
# that had a receipt is delivered exactly once, no message is half-stored,
# and after each restart the audit log verifies and extends the newest
# checkpoint the sender holds (so every receipt issued before the kill,
# each checked by the agent against that checkpoint, is still in it).
. "$(dirname "$0")/common.sh"
FETCH_WAIT=2s LOG_POLL=200ms net_init AR-UIF:FIU BR-PF:POLICE US-FINCEN:FIU
start_broker || finish
start_agent AR-UIF || finish
# Queued at the broker while the recipients are down.
for i in $(seq 1 10); do enl AR-UIF send --to BR-PF --to US-FINCEN --text "queued $i" >/dev/null; done
ok "ten receipted" wait_for 30 "receipts" sh -c "[ \$(ls $NET/AR-UIF/spool/sent/*.receipt | wc -l) = 10 ]"
stop_broker KILL
# what a kill in the middle of writing the checkpoint leaves
touch "$NET/broker/data/log/checkpoint.tmp-0123456789abcdef"
start_broker || finish
ok "a half-written checkpoint file is removed at start" \
	test ! -e "$NET/broker/data/log/checkpoint.tmp-0123456789abcdef"
ok "  ... and the log says so" grep -q "log: removed 1 temporary file(s)" "$NET/broker/log"
# Now kill it in the middle of a stream of submissions, 20 times.
rounds=20 per=15
for round in $(seq 1 $rounds); do
	for i in $(seq 1 $per); do enl AR-UIF send --to BR-PF --to US-FINCEN --text "r$round m$i" >/dev/null; done
	sleep 0.$((RANDOM % 4))	# a random instant in the stream, not a synchronisation
	stop_broker KILL
	ok "store intact after kill $round" sh -c "[ \$(sqlite3 $NET/broker/data/store.sqlite 'pragma integrity_check') = ok ]"
	ok "no half-stored message" sh -c "[ \$(sqlite3 $NET/broker/data/store.sqlite 'select count(*) from messages m where (select count(*) from deliveries d where d.msg = m.seq) != 2') = 0 ]"
	cp "$NET/AR-UIF/spool/checkpoint" "$NET/held" 2>/dev/null
	start_broker || finish
	if [ -f "$NET/held" ]; then
		ok "after kill $round the log verifies and extends the held checkpoint" \
			"$BIN/client/enlace-audit" verify "$NET/broker/data/log" --broker-pub "$NET/broker/key/card" \
			--since-checkpoint "$NET/held" --quiet
	fi
done
start_agent BR-PF || finish
start_agent US-FINCEN || finish
total=$((10 + rounds * per))
ok "everything sent" wait_for 90 "outbox empty" sh -c "[ -z \"\$(ls $NET/AR-UIF/spool/outbox)\" ]"
for r in BR-PF US-FINCEN; do
	ok "$r got all $total" wait_for 90 "$r inbox" sh -c "[ \$(ls $NET/$r/spool/inbox | wc -l) = $total ]"
done
# Every receipt names a message the recipients hold, each exactly once.
bad=0
for f in "$NET"/AR-UIF/spool/sent/*.receipt; do
	id=$(basename "$f" .receipt)
	for r in BR-PF US-FINCEN; do
		[ "$(received_times $r $id)" = 1 ] || { bad=$((bad + 1)); echo "$r: $id received $(received_times $r $id) times"; }
	done
done
is "every receipted message delivered exactly once" "$bad" 0
# Every receipt is backed by the audit log, after all the kills, and the
# log itself holds: each receipt's inclusion proof verifies under a
# checkpoint the broker signed.
unproven=0
for f in "$NET"/AR-UIF/spool/sent/*.receipt; do
	enl AR-UIF receipts "$(basename "$f" .receipt)" >/dev/null 2>&1 || unproven=$((unproven + 1))
done
is "receipts whose log proof fails" "$unproven" 0
stop_broker TERM
ok "no agent raised an alarm about the log" sh -c "! grep -h ALARM $NET/*/log"
# agents whose sessions died with the broker are not called malformed
ok "no reconnecting agent was refused as malformed" sh -c "! grep -q 'malformed' $NET/broker/log"
ok "the audit log verifies after $((rounds + 1)) kills" \
	"$BIN/client/enlace-audit" verify "$NET/broker/data/log" --broker-pub "$NET/broker/key/card"
start_broker || finish
is "stored messages" "$(sqlite3 "$NET/broker/data/store.sqlite" 'select count(*) from messages')" $total
finish

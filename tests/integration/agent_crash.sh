#!/bin/bash
# An agent killed with SIGKILL right after `enlace send` returned: the
# message is still sent, once, after the agent restarts. A recipient's
# agent killed while it takes a fetch in: every message lands in its inbox
# once, and is acknowledged.
. "$(dirname "$0")/common.sh"
FETCH_WAIT=2s net_init AR-UIF:FIU BR-PF:POLICE
start_agent AR-UIF || finish	# no broker yet: nothing can leave
ids=()
for i in 1 2 3 4 5; do
	ids+=("$(enl AR-UIF send --to BR-PF --text "message $i")")
done
stop_agent AR-UIF KILL
for id in "${ids[@]}"; do
	ok "$id durable in the outbox" test -s "$NET/AR-UIF/spool/outbox/$id.env"
done
start_broker || finish
start_agent AR-UIF || finish
start_agent BR-PF || finish
for id in "${ids[@]}"; do
	ok "$id delivered" wait_for 30 "$id" test -e "$NET/BR-PF/spool/inbox/$id.env"
done
ok "all acknowledged" wait_for 30 "acks" sh -c "for i in ${ids[*]}; do ENLACE_SOCKET=$NET/AR-UIF/agent.sock $BIN/client/enlace receipts \$i | grep -q acknowledged || exit 1; done"
is "five in BR-PF's inbox" "$(ls "$NET/BR-PF/spool/inbox" | wc -l)" 5
is "five stored at the broker" "$(sqlite3 "$NET/broker/data/store.sqlite" 'select count(*) from messages')" 5

# Killed while sending with the broker up: still exactly once.
for i in $(seq 1 20); do enl AR-UIF send --to BR-PF --text "burst $i" >> "$NET/burst"; done
stop_agent AR-UIF KILL
start_agent AR-UIF || finish
ok "burst delivered" wait_for 60 "burst" sh -c "[ \$(ls $NET/BR-PF/spool/inbox | wc -l) = 25 ]"
ok "outbox empty" wait_for 30 "outbox" sh -c "[ -z \"\$(ls $NET/AR-UIF/spool/outbox)\" ]"
is "25 stored at the broker, no duplicates" "$(sqlite3 "$NET/broker/data/store.sqlite" 'select count(*) from messages')" 25

# BR-PF killed while a fetch of 20 messages of 2 MiB comes in: those it
# wrote before the kill are not acknowledged yet (acks follow the fetch),
# so the broker hands them out again after the restart.
acked() { sqlite3 "$NET/broker/data/store.sqlite" "select count(*) from deliveries where recipient = 'BR-PF' and state = 3"; }
ok "the 25 are acknowledged" wait_for 30 "acks" sh -c "[ \$(sqlite3 $NET/broker/data/store.sqlite \"select count(*) from deliveries where recipient = 'BR-PF' and state = 3\") = 25 ]"
stop_agent BR-PF TERM
head -c $((2 * 1024 * 1024)) /dev/urandom > "$NET/two-mib.bin"
big=()
for i in $(seq 1 20); do
	big+=("$(enl AR-UIF send --to BR-PF --text "big $i" --attach "$NET/two-mib.bin")")
done
ok "the 20 wait at the broker" wait_for 60 "the outbox" sh -c "[ -z \"\$(ls $NET/AR-UIF/spool/outbox)\" ]"
start_agent BR-PF || finish
wait_for 60 "the first of them" test -e "$NET/BR-PF/spool/inbox/${big[0]}.env"
stop_agent BR-PF KILL
in_inbox=$(ls "$NET/BR-PF/spool/inbox" | grep -c '\.env$')
ls "$NET/BR-PF/spool/inbox" > "$NET/inbox-at-kill"
log_at_kill=$(wc -l < "$NET/BR-PF/log")
acked_at_kill=$(acked)
echo "at the kill: $in_inbox in the inbox, $acked_at_kill acknowledged"
ok "the kill came between writing to the inbox and acknowledging" \
	test "$in_inbox" -gt "$acked_at_kill"
# what a kill in the middle of a write leaves (one made here for certain)
touch "$NET/BR-PF/spool/inbox/0123456789abcdef0123456789abcdef.env.tmp-0123456789abcdef"
start_agent BR-PF || finish
for id in "${big[@]}"; do
	ok "$id in the inbox" wait_for 60 "$id" test -e "$NET/BR-PF/spool/inbox/$id.env"
	if grep -q "^$id.env$" "$NET/inbox-at-kill"; then
		# written before the kill (its log line may have been cut off by it):
		# the restarted agent acknowledges it and does not take it in again
		is "  ... already in the inbox at the kill, not taken in again" \
			"$(tail -n +$((log_at_kill + 1)) "$NET/BR-PF/log" | grep -c "received message $id")" 0
	else
		is "  ... taken in exactly once" "$(grep -c "received message $id" "$NET/BR-PF/log")" 1
	fi
done
ok "all 45 acknowledged" wait_for 60 "acks" sh -c "[ \$(sqlite3 $NET/broker/data/store.sqlite \"select count(*) from deliveries where recipient = 'BR-PF' and state = 3\") = 45 ]"
is "45 in BR-PF's inbox" "$(ls "$NET/BR-PF/spool/inbox" | grep -c '\.env$')" 45
ok "no temporary file left in the inbox" sh -c "! ls -a $NET/BR-PF/spool/inbox | grep -q tmp"
ok "  ... the agent removed them at start" grep -q "inbox: removed [0-9]* temporary file(s)" "$NET/BR-PF/log"
# Killed during a send --wait: the command prints the message id and
# says plainly that the message is queued; the agent sends it once it runs.
kill -STOP "$(cat "$NET/broker/pid")"	# no receipt can come
(enl AR-UIF send --wait --to BR-PF --text "waiting when the agent dies" \
	>"$NET/cut.out" 2>"$NET/cut.err"; echo $? >"$NET/cut.rc") &
ok "the message is in the outbox" wait_for 10 "the outbox" sh -c \
	"ls $NET/AR-UIF/spool/outbox | grep -q env"
cut=$(ls "$NET/AR-UIF/spool/outbox" | grep env | head -1)
cut=${cut%.env}
stop_agent AR-UIF KILL
ok "the send --wait ends" wait_for 10 "its end" test -s "$NET/cut.rc"
is "  ... with exit 1 (no receipt)" "$(cat "$NET/cut.rc")" 1
is "  ... printing the message id" "$(cat "$NET/cut.out")" "$cut"
ok "  ... saying it is queued" grep -q "message $cut is queued in the agent's outbox" "$NET/cut.err"
kill -CONT "$(cat "$NET/broker/pid")"
start_agent AR-UIF || finish
ok "  ... and it is delivered once the agent runs" wait_for 30 "delivered" \
	test -e "$NET/BR-PF/spool/inbox/$cut.env"
finish

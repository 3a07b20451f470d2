#!/bin/bash
# An agent killed with SIGKILL right after `enlace send` returned: the
# message is still sent, once, after the agent restarts.
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
finish

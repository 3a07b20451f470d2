#!/bin/bash
# Nothing is answered before it is on disk. The diskfull module
# (LD_PRELOAD) makes every fsync and fdatasync under one folder 500 ms
# slower while a flag file exists; an answer that waits for its sync then
# comes at least that much later, one that does not comes at once.
# - At the broker: a receipt (through an agent, and straight from the
#   protocol in a burst of sessions whose receipts share one signature).
# - At a sending agent: `enlace send` returns only once the message is
#   synced in its outbox.
. "$(dirname "$0")/common.sh"
FETCH_WAIT=2s net_init AR-UIF:FIU BR-PF:POLICE
slow() { # slow WHO FOLDER command...: runs command with WHO's syncs made slowable
	local who=$1 dir=$2
	shift 2
	preloaded "$dir" ENLACE_SLOWSYNC_FLAG="$NET/slow-$who" ENLACE_SLOWSYNC_MS=500 "$@"
}
ms() { echo $(($(date +%s%N) / 1000000)); }
slow broker "$NET/broker/data" start_broker || finish
slow AR-UIF "$NET/AR-UIF/spool" start_agent AR-UIF || finish
start_agent BR-PF || finish

# with nothing slowed, a receipt comes well under 500 ms (the check can tell)
t0=$(ms)
enl AR-UIF send --wait --to BR-PF --text "at full speed" > /dev/null
ok "a receipt at full speed" test $? = 0
fast=$(($(ms) - t0))
ok "  ... within 500 ms ($fast ms)" test "$fast" -lt 500

touch "$NET/slow-broker"
t0=$(ms)
enl AR-UIF send --wait --to BR-PF --text "over a slow disk" > /dev/null
ok "a receipt over the broker's slow disk" test $? = 0
took=$(($(ms) - t0))
ok "  ... not before the broker's sync ($took ms >= 500)" test "$took" -ge 500
t0=$(ms)
$BIN/tests/rawclient burst "tcp://127.0.0.1:$BROKER_PORT" "$NET/AR-UIF/key" \
	"$NET/directory" BR-PF 8 > "$NET/burst.out"
ok "a burst of 8 sessions, receipts signed together" test $? = 0
took=$(($(ms) - t0))
ok "  ... none before the sync of its round ($took ms >= 500)" test "$took" -ge 500
rm "$NET/slow-broker"

touch "$NET/slow-AR-UIF"
t0=$(ms)
id=$(enl AR-UIF send --to BR-PF --text "into a slow outbox")
ok "send over the agent's slow disk" test ${#id} = 32
took=$(($(ms) - t0))
ok "  ... returns only once the outbox copy is synced ($took ms >= 500)" test "$took" -ge 500
rm "$NET/slow-AR-UIF"
ok "and it arrives" wait_for 20 "the inbox" test -e "$NET/BR-PF/spool/inbox/$id.env"
finish

#!/bin/bash
# A full disk, made by the diskfull module (LD_PRELOAD): every write under
# one folder fails with ENOSPC while a flag file exists.
# - At the broker: a submission is refused with a clear error, nothing of
#   it is stored, the broker keeps running, and the agent sends it again
#   from its outbox once there is space; delivered once.
# - At a recipient agent: nothing is acknowledged that is not in its inbox;
#   once there is space it is, once.
# - At a sending agent: `enlace send` fails with a clear error and leaves
#   nothing in the outbox.
# The same module makes an agent run out of file descriptors: it cannot
# take an analyst's connection, says so, does not spin on it, and answers
# once it can again.
. "$(dirname "$0")/common.sh"
# (the agents ask for the log's checkpoint every second, disk full or not)
FETCH_WAIT=2s LOG_POLL=1s net_init AR-UIF:FIU BR-PF:POLICE
full() { # full WHO FOLDER command...: runs command with WHO's disk made fillable
	local who=$1 dir=$2
	shift 2
	preloaded "$dir" ENLACE_DISKFULL_FLAG="$NET/full-$who" ENLACE_NOFDS_FLAG="$NET/nofds-$who" "$@"
}
msgid() { grep -o '"message_id":"[0-9a-f]*"' | cut -d'"' -f4; }
stored() { sqlite3 "$NET/broker/data/store.sqlite" "select count(*) from messages where hex(id) = upper('$1')"; }
full broker "$NET/broker/data" start_broker || finish
full AR-UIF "$NET/AR-UIF/spool" start_agent AR-UIF || finish
full BR-PF "$NET/BR-PF/spool" start_agent BR-PF || finish
broker_pid=$(cat "$NET/broker/pid")

id0=$(enl AR-UIF send --wait --json --to BR-PF --text "before the disk fills" | msgid)
ok "a message goes through with the module loaded" wait_for 20 "delivered" test -e "$NET/BR-PF/spool/inbox/$id0.env"

# The broker's disk is full.
touch "$NET/full-broker"
id1=$(enl AR-UIF send --json --to BR-PF --text "while the broker's disk is full" | msgid)
ok "the agent keeps it in its outbox" test -e "$NET/AR-UIF/spool/outbox/$id1.env"
ok "the broker refuses it: no space" wait_for 20 "the refusal" \
	grep -q "refused SUBMIT request from AR-UIF: .*no space left on device" "$NET/broker/log"
ok "  ... and the agent hears why" wait_for 20 "the agent's log" \
	grep -q "no space left on device" "$NET/AR-UIF/log"
ok "  ... and enlace status shows why the outbox waits" wait_for 10 "status" sh -c \
	"ENLACE_SOCKET=$NET/AR-UIF/agent.sock $BIN/client/enlace status | grep -q 'the outbox waits: the broker could not store the message: no space left on device'"
ok "the broker is still running" kill -0 "$broker_pid"
is "nothing of it is stored" "$(stored "$id1")" 0
ok "  ... nor receipted" test ! -e "$NET/AR-UIF/spool/sent/$id1.receipt"
rm "$NET/full-broker"
ok "sent once there is space" wait_for 60 "the receipt" test -e "$NET/AR-UIF/spool/sent/$id1.receipt"
ok "  ... and delivered" wait_for 30 "delivered" test -e "$NET/BR-PF/spool/inbox/$id1.env"
ok "  ... and status no longer says it waits" sh -c \
	"ENLACE_SOCKET=$NET/AR-UIF/agent.sock $BIN/client/enlace status --json | grep -q '\"outbox_waiting\":\"\"'"
is "  ... once" "$(received_times BR-PF "$id1")" 1

# The broker's disk fills while a message waits for a recipient that is
# away: the recipient's fetches fail (the broker cannot mark it fetched),
# and the agent backs off rather than asking again at once.
stop_agent BR-PF TERM
idw=$(enl AR-UIF send --wait --json --to BR-PF --text "waiting for BR-PF" | msgid)
touch "$NET/full-broker"
before=$(grep -c "refused a request from BR-PF" "$NET/broker/log")
full BR-PF "$NET/BR-PF/spool" start_agent BR-PF || finish
ok "BR-PF's fetch is refused: no space" wait_for 20 "the refusal" sh -c \
	"[ \$(grep -c 'refused a request from BR-PF: no space left on device' '$NET/broker/log') -gt $before ]"
t0=$(date +%s%N)
wait_for 10 "three seconds" sh -c "[ \$(( (\$(date +%s%N) - $t0) / 1000000 )) -ge 3000 ]"
refusals=$(( $(grep -c "refused a request from BR-PF" "$NET/broker/log") - before ))
ok "  ... and it backs off: $refusals refusals in about 3 s" test "$refusals" -le 30
rm "$NET/full-broker"
ok "  ... then receives it" wait_for 60 "the inbox" test -e "$NET/BR-PF/spool/inbox/$idw.env"

# The recipient's disk is full: it cannot keep the message, so it does not
# acknowledge it.
touch "$NET/full-BR-PF"
id2=$(enl AR-UIF send --wait --json --to BR-PF --text "while the recipient's disk is full" | msgid)
ok "the recipient cannot keep it" wait_for 30 "the recipient's error" \
	grep -q "no space left on device" "$NET/BR-PF/log"
ok "  ... and enlace status shows its inbox blocked, and why" wait_for 10 "status" sh -c \
	"ENLACE_SOCKET=$NET/BR-PF/agent.sock $BIN/client/enlace status | grep -q 'INBOX      BLOCKED: cannot keep incoming messages: no space left on device'"
enl BR-PF status > /dev/null
is "  ... and exits 1" $? 1
ok "  ... so it is not in its inbox" test ! -e "$NET/BR-PF/spool/inbox/$id2.env"
is "  ... nor acknowledged" "$(acked_count AR-UIF "$id2")" 0
rm "$NET/full-BR-PF"
ok "received once there is space" wait_for 60 "the inbox" test -e "$NET/BR-PF/spool/inbox/$id2.env"
ok "  ... and acknowledged" wait_for 30 "the ack" acked_by AR-UIF "$id2"
ok "  ... and the inbox is no longer blocked" sh -c \
	"ENLACE_SOCKET=$NET/BR-PF/agent.sock $BIN/client/enlace status --json | grep -q '\"inbox_blocked\":\"\"'"
is "  ... once" "$(received_times BR-PF "$id2")" 1

# The sender's disk is full: `enlace send` says so, and nothing is kept.
before=$(ls -A "$NET/AR-UIF/spool/outbox" | wc -l)
touch "$NET/full-AR-UIF"
ok "enlace send fails" sh -c "! ENLACE_SOCKET=$NET/AR-UIF/agent.sock $BIN/client/enlace send --to BR-PF --text 'no room' > $NET/send.out 2> $NET/send.err"
ok "  ... saying why" grep -q "no space left on device" "$NET/send.err"
is "  ... and leaves nothing in the outbox" "$(ls -A "$NET/AR-UIF/spool/outbox" | wc -l)" "$before"
# a large message is written another way (O_DIRECT): the same answer
head -c $((2 * 1024 * 1024 + 100)) /dev/urandom > "$NET/large.bin"
ok "a large one fails too" sh -c "! ENLACE_SOCKET=$NET/AR-UIF/agent.sock $BIN/client/enlace send --to BR-PF --text 'no room' --attach $NET/large.bin > $NET/send.out 2> $NET/send.err"
ok "  ... saying why" grep -q "no space left on device" "$NET/send.err"
is "  ... and leaves nothing in the outbox" "$(ls -A "$NET/AR-UIF/spool/outbox" | wc -l)" "$before"
rm "$NET/full-AR-UIF"
id3=$(enl AR-UIF send --wait --json --to BR-PF --text "room again" | msgid)
ok "with room again it sends" test ${#id3} = 32

# A large message while the broker's disk is full: refused, then stored
# and delivered, byte for byte, once there is room.
touch "$NET/full-broker"
before=$(grep -c "refused SUBMIT request from AR-UIF: .*no space left on device" "$NET/broker/log")
id4=$(enl AR-UIF send --json --to BR-PF --text "large, while the broker's disk is full" \
	--attach "$NET/large.bin" | msgid)
ok "the broker refuses a large one: no space" wait_for 20 "the refusal" sh -c \
	"[ \$(grep -c 'refused SUBMIT request from AR-UIF: .*no space left on device' '$NET/broker/log') -gt $before ]"
is "  ... nothing of it is stored" "$(stored "$id4")" 0
ok "  ... nor a blob file kept" sh -c "[ -z \"\$(ls -A $NET/broker/data/blobs)\" ]"
rm "$NET/full-broker"
ok "  ... delivered once there is room" wait_for 60 "the inbox" test -e "$NET/BR-PF/spool/inbox/$id4.env"
mkdir -p "$NET/saved"
ENLACE_SOCKET=$NET/BR-PF/agent.sock "$BIN/client/enlace" read "$id4" --save "$NET/saved" > /dev/null
ok "  ... byte for byte" cmp -s "$NET/large.bin" "$NET/saved/large.bin"

# AR-UIF's agent is out of file descriptors: an analyst's command waits.
touch "$NET/nofds-AR-UIF"
agent_pid=$(cat "$NET/AR-UIF/pid")
ENLACE_SOCKET=$NET/AR-UIF/agent.sock "$BIN/client/enlace" status > "$NET/nofds.out" 2>&1 &
status_pid=$!
ok "the agent says it cannot take the connection" wait_for 20 "the log line" \
	grep -q "control socket: cannot take a connection: Too many open files" "$NET/AR-UIF/log"
cpu() { awk '{ print $14 + $15 }' "/proc/$agent_pid/stat"; }	# clock ticks
t0=$(cpu)
# a window to measure over, not a wait for anything: eight workers spinning
# on the queued connection would take both cores for all of it
sleep 2
ticks=$(($(cpu) - t0))
ok "  ... and does not spin on it ($ticks ticks of CPU in 2 s)" test "$ticks" -lt 40
ok "  ... and the command still waits" kill -0 "$status_pid"
rm "$NET/nofds-AR-UIF"
ok "with descriptors again it answers" wait "$status_pid"
ok "  ... the status" grep -q "connected" "$NET/nofds.out"

stop_broker TERM
ok "the audit log verifies" "$BIN/client/enlace-audit" verify "$NET/broker/data/log" \
	--broker-pub "$NET/broker/key/card"
# what a batch that could not commit had put in the log is not in it: the
# journal in the store holds every entry of the published checkpoint, no
# more and no gap, and the broker starts again on it
size=$(sed -n 2p "$NET/broker/data/log/checkpoint")
is "the store's journal is the checkpoint's entries" \
	"$(sqlite3 "$NET/broker/data/store.sqlite" "select count(*) || ' ' || coalesce(max(idx) + 1, 0) from audit")" \
	"$size $size"
start_broker || finish
ok "the broker starts again" kill -0 "$(cat "$NET/broker/pid")"
# A full disk is a failure of the machine, never a proof that the log was
# rewritten: no agent raised the alarm through all of it.
for a in AR-UIF BR-PF; do
	ok "$a raised no alarm" test ! -e "$NET/$a/spool/ALARM"
	ok "  ... and says none" sh -c "! grep -q ALARM '$NET/$a/log'"
done
finish

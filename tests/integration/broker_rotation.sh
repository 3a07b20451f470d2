#!/bin/bash
# The broker rotates its own key. The new directory (serial 2) reaches the
# broker only; its agents still hold serial 1, which does not know the
# broker's new key. The broker restarts on its log (checkpoints signed by
# the old key); each agent gets serial 2 with the broker's welcome, checks
# it against the pinned authority, and goes on: sends, receipts, its held
# checkpoint and the auditor's evidence from before the rotation all still
# verify.
. "$(dirname "$0")/common.sh"
K=$BIN/keys/enlace-keys
A=$BIN/client/enlace-audit
: "${DISKFULL:?DISKFULL must name the diskfull module}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"
FETCH_WAIT=2s LOG_POLL=300ms net_init AR-UIF:FIU BR-PF:POLICE
start_broker || finish
start_agent AR-UIF || finish
# BR-PF cannot write its directory file (its folder's disk is full): it
# must still put the newer directory in force
mkdir "$NET/BR-PF/dirs" && mv "$NET/BR-PF/directory" "$NET/BR-PF/dirs/directory"
sed -i "s#^directory = .*#directory = $NET/BR-PF/dirs/directory#" "$NET/BR-PF/agent.conf"
touch "$NET/full-BR-PF"
LD_PRELOAD=$DISKFULL ENLACE_DISKFULL_FLAG="$NET/full-BR-PF" ENLACE_DISKFULL_DIR="$NET/BR-PF/dirs" \
	start_agent BR-PF || finish
msgid() { grep -o '"message_id":"[0-9a-f]*"' | cut -d'"' -f4; }
KEYS=(--directory "$NET/directory" --authority-pub "$NET/authority/authority.pub")

id1=$(enl AR-UIF send --wait --json --to BR-PF --text "before the rotation" | msgid)
ok "a message before the rotation is receipted" test ${#id1} = 32
ok "  ... and acknowledged" wait_for 30 "the ack" acked_by AR-UIF "$id1"
ok "  ... published in the log" wait_for 20 "the trail" sh -c \
	"$A trail $id1 --log $NET/broker/data/log ${KEYS[*]} | grep -q ACKED"
ok "an evidence bundle of it" $A prove "$id1" --log "$NET/broker/data/log" "${KEYS[@]}" \
	--out "$NET/before.bundle"
cp "$NET/broker/data/log/checkpoint" "$NET/checkpoint.v1"
cp "$NET/directory" "$NET/directory.1"
ok "the agents hold serial 1" sh -c "cmp -s $NET/AR-UIF/directory $NET/directory && \
	cmp -s $NET/BR-PF/dirs/directory $NET/directory"

# the rotation: version 2 of the broker's keys, serial 2, a restart
$K agency rotate "$NET/broker/key" >/dev/null || finish
$K directory build --authority "$NET/authority" --serial 2 --expires 30d \
	--out "$NET/directory" "$NET/broker/key/card" "$NET"/*-*/key/card >/dev/null || finish
stop_broker TERM
ok "the broker starts on a log signed by its older key" start_broker
ok "  ... and says the log verified" grep -q "audit log .*entries, verified" "$NET/broker/log"

id2=$(enl AR-UIF send --wait --json --to BR-PF --text "after the rotation" | msgid)
ok "AR-UIF's next message is receipted" test ${#id2} = 32
ok "  ... AR-UIF took serial 2 with the broker's welcome" grep -q \
	"directory serial 2 from the broker (with its welcome), verified" "$NET/AR-UIF/log"
ok "  ... and saved it" cmp "$NET/AR-UIF/directory" "$NET/directory"
ok "BR-PF receives it" wait_for 30 "the inbox" test -e "$NET/BR-PF/spool/inbox/$id2.env"
ok "  ... having taken serial 2 the same way" grep -q \
	"directory serial 2 from the broker (with its welcome), verified" "$NET/BR-PF/log"
ok "  ... though it could not save it" grep -q "dirs/directory: cannot save directory serial 2 \
(no space left on device); it is in force until the agent stops" "$NET/BR-PF/log"
ok "  ... its file still serial 1" cmp -s "$NET/BR-PF/dirs/directory" "$NET/directory.1"
ok "  ... and acknowledges it" wait_for 30 "the ack" acked_by AR-UIF "$id2"
for id in "$id1" "$id2"; do
	ok "receipts of $id: signature, acks and log entry verify" \
		sh -c "ENLACE_SOCKET=$NET/AR-UIF/agent.sock $BIN/client/enlace receipts $id >/dev/null"
done
# the agents' held checkpoints (signed by the old key) lead on to the new
# ones: each takes and cosigns one past the rotation
v1=$(sed -n 2p "$NET/checkpoint.v1")
for a in AR-UIF BR-PF; do
	ok "$a cosigns a checkpoint signed by the new key" wait_for 20 "the cosignature" \
		sh -c "[ \$(ENLACE_SOCKET=$NET/$a/agent.sock $BIN/client/enlace status --json | grep -o '\"cosigned_size\":[0-9]*' | cut -d: -f2) -gt $v1 ]"
	is "  ... with no alarm about the log" "$(enl $a status --json | grep -o '"log_alarm":"[^"]*"')" '"log_alarm":""'
done
for a in AR-UIF BR-PF; do
	ok "$a raised no alarm" test ! -e "$NET/$a/spool/ALARM"
	ok "$a refused nothing" sh -c "! grep -q -E 'REFUSED|ALARM' '$NET/$a/log'"
done

# the auditor: both keys of the broker's card, the log across the rotation
ok "the log verifies with the broker's card" $A verify "$NET/broker/data/log" \
	--broker-pub "$NET/broker/key/card"
ok "  ... and extends the checkpoint signed by the old key" $A verify "$NET/broker/data/log" \
	--broker-pub "$NET/broker/key/card" --since-checkpoint "$NET/checkpoint.v1"
ok "the bundle from before the rotation still checks" $A check-bundle "$NET/before.bundle" \
	--authority-pub "$NET/authority/authority.pub"
ok "a trail across the rotation, with serial 2" wait_for 20 "the trail" sh -c \
	"$A trail $id2 --log $NET/broker/data/log ${KEYS[*]} | grep -q ACKED"
ok "a bundle after the rotation checks" $A prove "$id2" --log "$NET/broker/data/log" \
	"${KEYS[@]}" --out "$NET/after.bundle"
ok "  ... offline" $A check-bundle "$NET/after.bundle" --authority-pub "$NET/authority/authority.pub"

# with the broker away, the receipts kept at sending time are checked:
# the one from before the rotation is signed by the broker's older key
stop_broker TERM
ok "the agent sees the broker gone" wait_for 10 "not connected" sh -c \
	"ENLACE_SOCKET=$NET/AR-UIF/agent.sock $BIN/client/enlace status | grep -q 'NOT CONNECTED'"
for id in "$id1" "$id2"; do
	t0=$(date +%s%N)
	enl AR-UIF receipts "$id" > "$NET/kept-$id.txt"
	is "kept receipt of $id verifies with the broker away" $? 0
	# answered from what the agent holds, not after a timeout
	ok "  ... at once ($((($(date +%s%N) - t0) / 1000000)) ms)" \
		test $((($(date +%s%N) - t0) / 1000000)) -lt 3000
	ok "  ... saying why it is the kept one" \
		grep -q "^note: the broker is not connected (.*): this is the receipt kept" "$NET/kept-$id.txt"
done
finish

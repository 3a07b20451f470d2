#!/bin/bash
# Agents watch the broker's audit log: each holds the newest checkpoint,
# cosigns it, and raises an alarm when the broker shows a history that
# does not extend it: a fork (same size, other root) or a rewrite from an
# index on, each re-signed with the broker's real key.
. "$(dirname "$0")/common.sh"
FETCH_WAIT=2s LOG_POLL=300ms net_init AR-UIF:FIU BR-PF:POLICE US-FINCEN:FIU
start_broker || finish
for a in AR-UIF BR-PF US-FINCEN; do start_agent $a || finish; done
DB=$NET/broker/data/store.sqlite
LOG=$NET/broker/data/log
AUDIT="$BIN/client/enlace-audit"
PUB=$NET/broker/key/card

id=$(enl AR-UIF send --to BR-PF --to US-FINCEN --text "first")
ok "acknowledged by both" wait_for 20 "acks" sh -c "[ \$(ENLACE_SOCKET=$NET/AR-UIF/agent.sock $BIN/client/enlace receipts --json $id | grep -o acknowledged | wc -l) = 2 ]"

# Every agent cosigns the checkpoint it holds; the broker publishes the
# cosignatures with the checkpoint once the log stands still.
cosigned_all() { cosigned "$1" "$(sqlite3 "$DB" 'select count(*) from audit')"; }
for a in AR-UIF BR-PF US-FINCEN; do
	ok "$a cosigned the published checkpoint" wait_for 20 "$a cosignature" cosigned_all $a
done
ok "the log verifies with its cosignatures" $AUDIT verify "$LOG" --broker-pub "$PUB"
ok "a receipt verifies, no alarm" enl AR-UIF receipts "$id"
enl AR-UIF status > "$NET/status.txt"
is "enlace status exits 0: connected, no alarm" $? 0
ok "status shows the held checkpoint" grep -q "audit log  checkpoint of" "$NET/status.txt"
held=$(head -2 "$NET/AR-UIF/spool/checkpoint" | tail -1)
cp "$NET/AR-UIF/spool/checkpoint" "$NET/held.checkpoint"

# A forged cosignature (another agency's name, or a changed byte) is refused,
# and the published checkpoint still carries only the three true ones.
R="$BIN/tests/rawclient"
U="tcp://127.0.0.1:$BROKER_PORT"
"$R" cosign "$U" "$NET/AR-UIF/key" "$NET/directory" "$LOG/checkpoint" name BR-PF > "$NET/cosig.out"
is "a cosignature under another agency's name is refused" $? 0
ok "  ... as not this agency's line" grep -q "refused: not a cosignature line of this agency" "$NET/cosig.out"
"$R" cosign "$U" "$NET/AR-UIF/key" "$NET/directory" "$LOG/checkpoint" flip > "$NET/cosig.out"
is "a cosignature with a changed byte is refused" $? 0
ok "  ... as not verifying" grep -q "refused: the cosignature does not verify" "$NET/cosig.out"
"$R" cosign "$U" "$NET/AR-UIF/key" "$NET/directory" "$LOG/checkpoint" good > "$NET/cosig.out"
is "the same agency's true cosignature is accepted (the refusals were for the forgery)" $? 0
is "the published checkpoint keeps exactly the three true cosignatures" \
	"$(grep -c '^— [A-Z]*-' "$LOG/checkpoint")" 3
ok "the published file carries only cosignatures that verify" \
	$AUDIT verify "$LOG" --broker-pub "$PUB"

# ---- a fork: the operator swaps two old entries and drops the last two,
# so that after a restart (BROKER_STARTED, POLICY_LOADED) the log has the
# same size as the checkpoint the agents hold, with another root.
stop_broker TERM
size=$(sqlite3 "$DB" 'select count(*) from audit')
is "the held checkpoint is the log's size" "$held" "$size"
# the broker refuses to start on a journal that disagrees with its checkpoint
sqlite3 "$DB" "begin; create temp table t as select idx, entry from audit where idx in (1, 2);
	update audit set entry = (select entry from t where idx = 2) where idx = 1;
	update audit set entry = (select entry from t where idx = 1) where idx = 2;
	delete from audit where idx >= $((size - 2)); commit;"
$BIN/broker/enlace-broker --config "$NET/broker/broker.conf" >>"$NET/broker/log" 2>&1
is "the broker refuses a journal its checkpoint does not match" $? 1
ok "and says why" grep -q "does not match the journal\|more than the journal holds" "$NET/broker/log"
# the operator removes the published log too, and the broker re-signs the forgery
rm -rf "$LOG"
start_broker || finish
ok "AR-UIF raises the fork alarm" wait_for 20 "fork alarm" grep -q "ALARM: FORK" "$NET/AR-UIF/log"
enl AR-UIF status --json > "$NET/status.json"
is "enlace status exits 1 under the alarm" $? 1
ok "status shows the alarm" python3 -c "import json; s=json.load(open('$NET/status.json')); assert 'FORK' in s['log_alarm'], s"
enl AR-UIF receipts "$id" > "$NET/receipts.txt"
is "enlace receipts exits 1 under the alarm" $? 1
ok "and prints it" grep -q "ALARM" "$NET/receipts.txt"
ok "the alarm is kept in the spool" grep -q FORK "$NET/AR-UIF/spool/ALARM"
is "the agent kept the checkpoint it had" "$(head -2 "$NET/AR-UIF/spool/checkpoint" | tail -1)" "$held"
ok "the forged log verifies on its own (it is signed)" $AUDIT verify "$LOG" --broker-pub "$PUB"
$AUDIT verify "$LOG" --broker-pub "$PUB" --since-checkpoint "$NET/held.checkpoint" 2> "$NET/verify.err"
is "but not against the checkpoint an agent held" $? 1
ok "verify names the fork" grep -q "fork\|does not extend" "$NET/verify.err"

# ---- a rewrite with more entries: an agent restarted without the alarm
# still holds the true checkpoint and catches it.
stop_agent BR-PF TERM
rm -f "$NET/BR-PF/spool/ALARM"
stop_broker TERM
sqlite3 "$DB" "insert into audit select max(idx) + 1, entry from audit where idx = (select max(idx) from audit);"
rm -rf "$LOG"
start_broker || finish
start_agent BR-PF || finish
ok "BR-PF raises the rewrite alarm" wait_for 20 "rewrite alarm" grep -q "ALARM: the broker's log of .* does not extend" "$NET/BR-PF/log"
$AUDIT verify "$LOG" --broker-pub "$PUB" --since-checkpoint "$NET/held.checkpoint" 2> "$NET/verify.err"
is "verify --since-checkpoint refuses the rewrite" $? 1
finish

#!/bin/bash
# Refusals: each with a clear error to the client, a log line at the
# broker, and nothing stored.
. "$(dirname "$0")/common.sh"
net_init AR-UIF:FIU BR-PF:POLICE US-FINCEN:FIU
sed -i 's/^\[broker\]$/[broker]\nmax_payload = 64K/' "$NET/broker/broker.conf"
# A stranger, with a card the broker's directory does not hold.
$BIN/keys/enlace-keys agency new --id XX-STRANGER --kind FIU --no-passphrase "$NET/stranger" >/dev/null
start_broker || finish
R="$BIN/tests/rawclient"
U=tcp://127.0.0.1:$BROKER_PORT
D=$NET/directory
run() { # run MODE ARGS...: the refusal must come back
	"$R" "$1" "$U" "${@:2}" > "$NET/raw.out" 2>&1
}
ok "an honest client is served" run hello "$NET/AR-UIF/key" "$D"
ok "unknown key refused" run stranger "$NET/stranger" "$D"
ok "  ... and said why" grep -q "not in the directory" "$NET/raw.out"
ok "a handshake from a clock an hour slow refused" run skewed "$NET/AR-UIF/key" "$D"
ok "  ... and said why" grep -q "more than 300 s from the broker's clock" "$NET/raw.out"
ok "replayed handshake refused" run replay-hello "$NET/AR-UIF/key" "$D"
ok "  ... and said why" grep -q "replayed handshake" "$NET/raw.out"
ok "replayed frame refused" run replay-frame "$NET/AR-UIF/key" "$D"
ok "  ... and said why" grep -q "replayed or reordered" "$NET/raw.out"
ok "another agency's envelope refused" run wrong-sender "$NET/AR-UIF/key" "$D" "$NET/BR-PF/key"
ok "  ... and said why" grep -q "sender is not this session" "$NET/raw.out"
ok "forged signature refused" run forged "$NET/AR-UIF/key" "$D"
ok "  ... and said why" grep -q "signature does not verify" "$NET/raw.out"
ok "oversized refused" run oversized "$NET/AR-UIF/key" "$D"
ok "  ... and said why" grep -q "larger than the limit" "$NET/raw.out"
ok "a frame over the transport limit: connection dropped" run oversized-frame "$NET/AR-UIF/key" "$D"
ok "  ... the broker still serves" run hello "$NET/AR-UIF/key" "$D"
ok "garbage instead of a handshake refused" run garbage-first "$NET/AR-UIF/key" "$D"
ok "garbage after the handshake refused" run garbage-after "$NET/AR-UIF/key" "$D"
for line in "refused a session: sender is not in the directory" "replayed handshake" \
	"replayed or reordered frame" "envelope claims sender BR-PF" \
	"signature does not verify" "larger than the limit" "refused a session: malformed" \
	"refused a session: the handshake's time is more than 300 s"; do
	ok "broker logged: $line" grep -q "$line" "$NET/broker/log"
done
is "nothing stored" "$(sqlite3 "$NET/broker/data/store.sqlite" 'select count(*) from messages')" 0
# ... but each refused submission is on the record: a REJECTED entry with its reason
today=$(date -u +%F) tomorrow=$(date -u -d tomorrow +%F)
rejected() {
	$BIN/client/enlace-audit report --log "$NET/broker/data/log" --broker-pub "$NET/broker/key/card" \
		--since "$today" --until "$tomorrow" --format json > "$NET/report.json" &&
	python3 -c "
import json; r = {x['agency']: x for x in json.load(open('$NET/report.json'))}['AR-UIF']
assert r['rejected'] == 3 and r['sent'] == 0, r
reasons = ' '.join(r['rejected_by_reason'])
assert 'sender is not this session' in reasons and 'larger than the limit' in reasons, r"
}
ok "the log records the 3 refused submissions, with reasons" wait_for 10 "REJECTED entries" rejected

# A revoked key: the broker's directory revokes BR-PF; its agent is refused.
stop_broker TERM
$BIN/keys/enlace-keys directory revoke --authority "$NET/authority" --in "$D" --id BR-PF \
	--reason "device seized" --out "$D" >/dev/null
start_broker || finish
ok "revoked key refused" run stranger "$NET/BR-PF/key" "$NET/BR-PF/directory"
ok "  ... and said why" grep -q "revoked" "$NET/raw.out"
ok "broker logged the revoked key" grep -q "refused a session: key has been revoked" "$NET/broker/log"
is "still nothing stored" "$(sqlite3 "$NET/broker/data/store.sqlite" 'select count(*) from messages')" 0
is "each directory is recorded once in the log" "$(grep -c 'audit log: directory serial . recorded' "$NET/broker/log")" 2

# An agent's message over the broker's limit (64K here, 50 MiB at the
# agent): refused for good, and the sender is told why, now and later.
start_agent AR-UIF || finish
head -c 100000 /dev/urandom > "$NET/big.bin"
big=$(enl AR-UIF send --to US-FINCEN --text big --attach "$NET/big.bin")
ok "the sender is told the broker refused it" wait_for 20 "failed" test -e "$NET/AR-UIF/spool/failed/$big.env"
enl AR-UIF receipts "$big" > /dev/null 2> "$NET/big.err"
is "  ... receipts exits 1" $? 1
ok "  ... naming the broker's reason" grep -q "refused by the broker: .*larger than the limit" "$NET/big.err"

# A message to one's own agency: the agent refuses to send it, and the
# broker refuses one made by hand.
ok "enlace send to this agency fails" sh -c "! ENLACE_SOCKET=$NET/AR-UIF/agent.sock \
	$BIN/client/enlace send --to US-FINCEN --to AR-UIF --text mine > '$NET/self.out' 2> '$NET/self.err'"
ok "  ... saying why" grep -q "AR-UIF is this agency: a message goes to other agencies" "$NET/self.err"
before=$(sqlite3 "$NET/broker/data/store.sqlite" 'select count(*) from messages')
ok "the broker refuses a message to its sender" run to-self "$NET/AR-UIF/key" "$D"
ok "  ... and logs it" grep -q "refused SUBMIT .*the sender is one of the recipients" "$NET/broker/log"
is "  ... storing nothing" "$(sqlite3 "$NET/broker/data/store.sqlite" 'select count(*) from messages')" "$before"
finish

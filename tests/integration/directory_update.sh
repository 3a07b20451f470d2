#!/bin/bash
# A newer directory reaches the broker (by SIGHUP, while the agents'
# sessions stay open) before a recipient's agent: an agency that joined,
# then a sender's rotated key. The recipient's agent,
# whose directory does not know the sender (or its key), asks the broker
# for the newest directory before it would refuse the message, and
# receives it; nothing is refused. Then a revocation: the revoked agency's session is
# closed and it cannot open another; an older directory is refused.
. "$(dirname "$0")/common.sh"
K=$BIN/keys/enlace-keys
FETCH_WAIT=2s net_init AR-UIF:FIU BR-PF:POLICE
start_broker || finish
start_agent AR-UIF || finish
start_agent BR-PF || finish
msgid() { grep -o '"message_id":"[0-9a-f]*"' | cut -d'"' -f4; }
# new_directory SERIAL: the broker's directory, with every card, put in
# force by SIGHUP: the agents' sessions stay open, so a newer directory
# does not come with a welcome (net-broker_rotation has that way)
new_directory() {
	$K directory build --authority "$NET/authority" --serial "$1" --expires 30d \
		--out "$NET/directory" "$NET/broker/key/card" "$NET"/*-*/key/card >/dev/null &&
		kill -HUP "$(cat "$NET/broker/pid")" &&
		wait_for 10 "serial $1 in force" grep -q "directory serial $1 in force" "$NET/broker/log"
}

# MX-UIF joins: directory serial 2, at the broker and at MX-UIF only.
mkdir -p "$NET/MX-UIF"
$K agency new --id MX-UIF --kind FIU --no-passphrase "$NET/MX-UIF/key" >/dev/null
new_directory 2 || finish
cp "$NET/directory" "$NET/MX-UIF/directory"
sed "s#/AR-UIF/#/MX-UIF/#g" "$NET/AR-UIF/agent.conf" > "$NET/MX-UIF/agent.conf"
start_agent MX-UIF || finish
id=$(enl MX-UIF send --wait --json --to BR-PF --text "from a new member" | msgid)
ok "the broker takes a message from the new agency" test ${#id} = 32
ok "BR-PF, with serial 1, receives it" wait_for 30 "the inbox" test -e "$NET/BR-PF/spool/inbox/$id.env"
ok "  ... having taken serial 2 from the broker" \
	grep -q "directory serial 2 from the broker, verified" "$NET/BR-PF/log"
ok "  ... and acknowledged it" wait_for 30 "the ack" acked_by MX-UIF "$id"

id3=$(enl AR-UIF send --wait --json --to MX-UIF --text "welcome" | msgid)
ok "AR-UIF, with serial 1, can write to the new agency" test ${#id3} = 32
ok "  ... having taken serial 2 from the broker" \
	grep -q "directory serial 2 from the broker, verified" "$NET/AR-UIF/log"
ok "  ... and MX-UIF receives it" wait_for 30 "the inbox" test -e "$NET/MX-UIF/spool/inbox/$id3.env"
ok "an agency in no directory is still refused, by name" sh -c \
	"! ENLACE_SOCKET=$NET/AR-UIF/agent.sock $BIN/client/enlace send --to XX-NONE --text x 2> $NET/none.err"
ok "  ... saying so" grep -q "XX-NONE: recipient is not in the directory" "$NET/none.err"

# AR-UIF rotates its key: serial 3, at the broker and at AR-UIF only.
$K agency rotate "$NET/AR-UIF/key" >/dev/null || finish
new_directory 3 || finish
cp "$NET/directory" "$NET/AR-UIF/directory"
stop_agent AR-UIF TERM
start_agent AR-UIF || finish
id2=$(enl AR-UIF send --wait --json --to BR-PF --text "signed with the new key" | msgid)
ok "the broker takes a message signed with the rotated key" test ${#id2} = 32
ok "BR-PF, with serial 2, receives it" wait_for 30 "the inbox" test -e "$NET/BR-PF/spool/inbox/$id2.env"
ok "  ... having taken serial 3 from the broker" \
	grep -q "directory serial 3 from the broker, verified" "$NET/BR-PF/log"
ok "nothing was refused" test -z "$(ls -A "$NET/BR-PF/spool/refused" 2>/dev/null)"
ok "no REFUSED line" sh -c "! grep -q REFUSED '$NET/BR-PF/log'"

# MX-UIF's key is revoked: serial 4, put in force by SIGHUP, no restart.
# (In a later second than BR-PF got MX-UIF's message: the revocation's time
# is in seconds. Two seconds on by date's clock: time(), which enlace-keys
# stamps the revocation with, reads the kernel's coarse clock, which can
# be a tick behind date's, so one second on could still be the same one.)
got=$(stat -c %Y "$NET/BR-PF/spool/inbox/$id.env")
ok "the clock is past the second BR-PF got it" wait_for 5 "the next second" sh -c "[ \$(date +%s) -gt $((got + 1)) ]"
bpid=$(cat "$NET/broker/pid")
$K directory revoke --authority "$NET/authority" --in "$NET/directory" --id MX-UIF \
	--reason "key compromised" --out "$NET/directory.4" >/dev/null || finish
mv "$NET/directory.4" "$NET/directory"
# MX-UIF has a session open (a request on it) when serial 4 comes
ok "MX-UIF asks the broker" sh -c "ENLACE_SOCKET=$NET/MX-UIF/agent.sock $BIN/client/enlace receipts $id >/dev/null"
kill -HUP "$bpid"
ok "SIGHUP puts serial 4 in force" wait_for 10 "serial 4" grep -q "directory serial 4 in force" "$NET/broker/log"
ok "  ... recorded in the audit log" grep -q "audit log: directory serial 4 recorded" "$NET/broker/log"
ok "  ... MX-UIF's session is closed" grep -q "session MX-UIF v1 closed: directory serial 4 no longer holds its key" "$NET/broker/log"
ok "  ... the broker kept running" kill -0 "$bpid"
idx=$(enl MX-UIF send --json --to BR-PF --text "from a revoked key" | msgid)
ok "MX-UIF's message stays in its outbox" test -e "$NET/MX-UIF/spool/outbox/$idx.env"
ok "  ... its sessions refused as revoked" wait_for 20 "the refusal" \
	grep -q "refused a session: .*revoked" "$NET/broker/log"
is "  ... nothing of it stored" \
	"$(sqlite3 "$NET/broker/data/store.sqlite" "select count(*) from messages where hex(id) = upper('$idx')")" 0
# the same file again is no change; an older one is refused, and serial 4 stays
kill -HUP "$bpid"
cp "$NET/directory" "$NET/directory.4"
$K directory build --authority "$NET/authority" --serial 2 --expires 30d \
	--out "$NET/directory" "$NET/broker/key/card" "$NET"/*-*/key/card >/dev/null
kill -HUP "$bpid"
ok "an older directory is refused on SIGHUP" wait_for 10 "the refusal" \
	grep -q "older than the one in force; the directory in force (serial 4) stays" "$NET/broker/log"
is "  ... and serial 4 was put in force once" "$(grep -c "directory serial 4 in force" "$NET/broker/log")" 1
ok "AR-UIF still sends" test "$(enl AR-UIF send --wait --json --to BR-PF --text "after the revocation" | msgid | wc -c)" = 33
mv "$NET/directory.4" "$NET/directory"
# BR-PF still shows what MX-UIF sent before the revocation, saying so
stop_agent BR-PF && start_agent BR-PF || finish
ok "BR-PF takes serial 4" wait_for 20 "serial 4" sh -c "ENLACE_SOCKET=$NET/BR-PF/agent.sock \
	$BIN/client/enlace status --json | grep -q '\"directory_serial\":4'"
enl BR-PF inbox > "$NET/inbox4.txt"
ok "  ... the inbox still lists MX-UIF's earlier message" grep -q "^$id .*\[SENDER KEY REVOKED since\]" "$NET/inbox4.txt"
enl BR-PF read "$id" > "$NET/read4.txt"
# (on failure, what read said, and the file's time)
shows() { grep -q "$1" "$2" || { echo "--- $2:"; cat "$2"; ls -l --time-style=+%s "$3"; return 1; }; }
ok "  ... read shows it, with the revocation" shows \
	"KEY REVOKED at .* (key compromised), after this message arrived" "$NET/read4.txt" \
	"$NET/BR-PF/spool/inbox/$id.env"

# BR-PF rotates its key: serial 5 reaches the broker (SIGHUP) and AR-UIF
# (restarted), but BR-PF's agent runs on with the keys it loaded at start.
cp "$NET/directory" "$NET/directory.4"
$K agency rotate "$NET/BR-PF/key" >/dev/null || finish
$K directory build --authority "$NET/authority" --serial 5 --expires 30d \
	--keep-revocations "$NET/directory" --out "$NET/directory.5" \
	"$NET/broker/key/card" "$NET"/*-*/key/card >/dev/null || finish
mv "$NET/directory.5" "$NET/directory"
kill -HUP "$bpid"
ok "serial 5 in force" wait_for 10 "serial 5" grep -q "directory serial 5 in force" "$NET/broker/log"
cp "$NET/directory" "$NET/AR-UIF/directory"
stop_agent AR-UIF TERM
start_agent AR-UIF || finish
id5=$(enl AR-UIF send --wait --json --to BR-PF --text "to the new key" | msgid)
ok "a message sealed to BR-PF's new key is receipted" test ${#id5} = 32
ok "BR-PF, without that key, says why it cannot take it" wait_for 20 "the log line" \
	grep -q "message $id5 from AR-UIF is sealed to a key of BR-PF that this agent has not loaded" \
	"$NET/BR-PF/log"
ok "  ... and does not refuse it" sh -c "! grep -q REFUSED '$NET/BR-PF/log'"
# a later message BR-PF can open (sealed to its old key, with serial 4,
# put in AR-UIF's outbox as its agent does) is not held up behind it
$BIN/client/enlace seal --key "$NET/AR-UIF/key" --directory "$NET/directory.4" \
	--authority-pub "$NET/authority/authority.pub" --to BR-PF --text "to the old key" \
	--json --out "$NET/old.env" > "$NET/seal.json" || finish
id6=$(msgid < "$NET/seal.json")
mv "$NET/old.env" "$NET/AR-UIF/spool/outbox/$id6.env"
ok "  ... a later message to the key it has comes in meanwhile" wait_for 30 "the inbox" \
	test -e "$NET/BR-PF/spool/inbox/$id6.env"
ok "  ... while the first still waits" test ! -e "$NET/BR-PF/spool/inbox/$id5.env"
is "  ... said once in the log, not at every fetch" \
	"$(grep -c "message $id5 from AR-UIF is sealed to a key" "$NET/BR-PF/log")" 1
stop_agent BR-PF TERM
start_agent BR-PF || finish
ok "restarted with the key, BR-PF receives it" wait_for 30 "the inbox" \
	test -e "$NET/BR-PF/spool/inbox/$id5.env"
# a newer directory without the broker's own card is refused whole
cp "$NET/directory" "$NET/directory.5"
$K directory build --authority "$NET/authority" --serial 6 --expires 30d \
	--keep-revocations "$NET/directory.5" --out "$NET/directory" "$NET"/*-*/key/card >/dev/null
kill -HUP "$bpid"
ok "a directory without the broker's card is refused on SIGHUP" wait_for 10 "the refusal" \
	grep -q "no BROKER card for this broker at its key version; the directory in force (serial 5) stays" \
	"$NET/broker/log"
mv "$NET/directory.5" "$NET/directory"
stop_broker TERM
# a restart with an older directory (serial 4, before BR-PF's rotation)
# is refused: it would bring back what serial 5 replaced
cp "$NET/directory" "$NET/directory.5"
cp "$NET/directory.4" "$NET/directory"
"$BIN/broker/enlace-broker" --config "$NET/broker/broker.conf" >>"$NET/broker/log" 2>&1
is "a restart with an older directory is refused" $? 1
ok "  ... saying why" grep -q "serial 4 is older than serial 5 this broker has put in force; refused" \
	"$NET/broker/log"
mv "$NET/directory.5" "$NET/directory"
start_broker || finish
ok "  ... and with the newest it starts" kill -0 "$(cat "$NET/broker/pid")"
stop_broker TERM
ok "the audit log verifies" "$BIN/client/enlace-audit" verify "$NET/broker/data/log" \
	--broker-pub "$NET/broker/key/card"
# An operator who erases what the broker keeps of it (its store's record
# of serial 5) can start it on serial 4: the auditor sees it in the log.
sqlite3 "$NET/broker/data/store.sqlite" "DELETE FROM meta WHERE key = 'directory_serial'"
cp "$NET/directory.4" "$NET/directory"
start_broker || finish
stop_broker TERM
"$BIN/client/enlace-audit" verify "$NET/broker/data/log" --broker-pub "$NET/broker/key/card" \
	2>"$NET/back.err"
is "enlace-audit verify flags a directory serial that goes back" $? 1
ok "  ... naming it" grep -q "names directory serial 4, older than serial 5 .* went back to an older directory" \
	"$NET/back.err"
finish

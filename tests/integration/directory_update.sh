#!/bin/bash
# A newer directory reaches the broker before a recipient's agent: an
# agency that joined, then a sender's rotated key. The recipient's agent,
# whose directory does not know the sender (or its key), asks the broker
# for the newest directory before it would refuse the message, and
# receives it; nothing is refused.
. "$(dirname "$0")/common.sh"
K=$BIN/keys/enlace-keys
FETCH_WAIT=2s net_init AR-UIF:FIU BR-PF:POLICE
start_broker || finish
start_agent AR-UIF || finish
start_agent BR-PF || finish
msgid() { grep -o '"message_id":"[0-9a-f]*"' | cut -d'"' -f4; }
# new_directory SERIAL: the broker's directory, with every card, and a restart
new_directory() {
	$K directory build --authority "$NET/authority" --serial "$1" --expires 30d \
		--out "$NET/directory" "$NET/broker/key/card" "$NET"/*-*/key/card >/dev/null &&
		stop_broker TERM && start_broker
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
ok "  ... and acknowledged it" wait_for 30 "the ack" sh -c "[ \$(ENLACE_SOCKET=$NET/MX-UIF/agent.sock $BIN/client/enlace receipts --json $id | grep -o '\"state\":\"acknowledged\"' | wc -l) = 1 ]"

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
finish

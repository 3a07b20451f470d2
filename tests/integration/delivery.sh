#!/bin/bash
# Delivery to several recipients: each gets the message exactly once, the
# sender sees every acknowledgement, and the broker's data folder never
# holds the plaintext of a body or an attachment name.
. "$(dirname "$0")/common.sh"
FETCH_WAIT=2s net_init AR-UIF:FIU BR-PF:POLICE US-FINCEN:FIU CO-FGN:PROSECUTOR
start_broker || finish
for a in AR-UIF BR-PF US-FINCEN CO-FGN; do start_agent $a || finish; done

marker="MARKER-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
printf 'ledger %s\n' "$marker" > "$NET/ledger-$marker.csv"
id=$(enl AR-UIF send --to BR-PF --to US-FINCEN --to CO-FGN --case CASE-2026-0042 \
	--tlp amber --subject "Structured deposits" --text "body $marker" \
	--attach "$NET/ledger-$marker.csv")
ok "send printed a message id" test ${#id} = 32
for r in BR-PF US-FINCEN CO-FGN; do
	ok "$r received it" wait_for 20 "$r inbox" sh -c "ENLACE_SOCKET=$NET/$r/agent.sock $BIN/client/enlace inbox | grep -q $id"
done
ok "three acknowledgements" wait_for 20 "acks" sh -c "[ \$(ENLACE_SOCKET=$NET/AR-UIF/agent.sock $BIN/client/enlace receipts --json $id | grep -o acknowledged | wc -l) = 3 ]"
ok "receipt verifies" enl AR-UIF receipts $id
enl BR-PF read --json --save "$NET/saved" $id > "$NET/read.json"
ok "read shows the body" grep -q "body $marker" "$NET/read.json"
ok "read shows the handling" grep -q '"tlp":"amber"' "$NET/read.json"
ok "attachment saved intact" cmp "$NET/ledger-$marker.csv" "$NET/saved/ledger-$marker.csv"

# A second message, then: each recipient got each message exactly once.
id2=$(enl AR-UIF send --wait --json --to BR-PF --text second | grep -o '"message_id":"[0-9a-f]*"' | cut -d'"' -f4)
ok "send --wait returned the receipt" test ${#id2} = 32
ok "BR-PF got the second" wait_for 20 "second" sh -c "ENLACE_SOCKET=$NET/BR-PF/agent.sock $BIN/client/enlace inbox | grep -q $id2"
for r in BR-PF US-FINCEN CO-FGN; do
	is "$r received $id once" "$(received_times $r $id)" 1
	is "$r inbox files" "$(ls "$NET/$r/spool/inbox" | grep -c "^$id")" 1
done
is "US-FINCEN did not get the second" "$(ls "$NET/US-FINCEN/spool/inbox" | grep -c "$id2")" 0
enl BR-PF inbox --json > "$NET/inbox.json"
ok "inbox json parses" python3 -c "import json; assert len(json.load(open('$NET/inbox.json'))) == 2"
enl AR-UIF status --json > "$NET/status.json"
ok "status: connected, nothing waiting" python3 -c "import json; s=json.load(open('$NET/status.json')); assert s['connected'] and s['outbox']==0 and s['sent']==2, s"

# Mistakes on the command line: each is named, exits 2 (with send's
# usage) or 1, and nothing reaches the outbox.
refused_send() { # refused_send RC MESSAGE-PART ARGS...: send fails so, naming it
	local want=$1 part=$2 got
	shift 2
	enl AR-UIF send "$@" > "$NET/send.out" 2> "$NET/send.err" && return 1
	got=$?
	[ "$got" = "$want" ] && grep -qF -- "$part" "$NET/send.err" &&
		{ [ "$want" != 2 ] || grep -q "^usage: enlace send " "$NET/send.err"; } ||
		{ echo "send $*: exit $got:"; cat "$NET/send.err"; return 1; }
}
ok "send without text" refused_send 2 "text is required" --to BR-PF
ok "send to a recipient twice" refused_send 2 "--to BR-PF is given twice" --to BR-PF --to BR-PF --text x
ok "send to a malformed id" refused_send 2 "not 'br pf'" --to "br pf" --text x
ok "send to an unknown agency" refused_send 1 "XX-NOBODY: recipient is not in the directory" --to XX-NOBODY --text x
ok "send with a bad --tlp" refused_send 2 "--tlp takes clear, green, amber, amber+strict or red, not 'purple'" --to BR-PF --text x --tlp purple
ok "send with --type forward" refused_send 2 "forwards and consent have their own commands" --to BR-PF --text x --type forward
ok "send TLP:RED with onward sharing free" refused_send 2 "TLP:RED is never shared onward" --to BR-PF --text x --tlp red --onward free
ok "send TLP:AMBER+STRICT with onward sharing free" refused_send 2 "TLP:AMBER+STRICT is never shared onward" --to BR-PF --text x --tlp amber+strict --onward free
ok "send nothing at all" refused_send 2 "nothing to send" --to BR-PF --text ""
ok "send attaching a folder" refused_send 1 "$NET: not a regular file" --to BR-PF --text x --attach "$NET"
is "nothing reached the outbox or sent" "$(ls "$NET/AR-UIF/spool/outbox" "$NET/AR-UIF/spool/sent" | grep -c '\.env$')" 2

# A message that is properly signed but does not decrypt: the broker
# cannot tell, the recipient refuses it, says so, and the sender sees it.
bad=$("$BIN/tests/rawclient" bad-ciphertext "tcp://127.0.0.1:$BROKER_PORT" "$NET/AR-UIF/key" \
	"$NET/directory" BR-PF | tail -n 1)
ok "the broker accepted the undecryptable message" test ${#bad} = 32
ok "BR-PF refused it" wait_for 20 "refused" sh -c "ls $NET/BR-PF/spool/refused/*.reason"
ok "  ... with the reason beside it" grep -q "content was altered" $NET/BR-PF/spool/refused/*.reason
ok "  ... not in the inbox" test ! -e "$NET/BR-PF/spool/inbox/$bad.env"
ok "the broker recorded the refusal" wait_for 20 "broker log" grep -q "BR-PF refused a message it received" "$NET/broker/log"
enl AR-UIF receipts --json "$bad" > "$NET/bad.json" 2>&1 || true
ok "the sender sees it refused" grep -q '"state":"refused by recipient"' "$NET/bad.json"

# The log is served read-only over HTTP: the same checkpoint and tiles.
# the log over HTTP to a member (tests/integration/http_log.sh: the rest)
fetch() { "$BIN/tests/httpraw" "$LOG_PORT" "/$1" --key "$NET/BR-PF/key" --origin enlace/OAS-BROKER --body; }
wait_for 10 "published checkpoint" test -f "$NET/broker/data/log/checkpoint"
# (the files may be republished while we compare: retry until a deadline)
ok "checkpoint over HTTP is the published file" wait_for 10 "checkpoint over HTTP" sh -c \
	"$(declare -f fetch); BIN=$BIN NET=$NET LOG_PORT=$LOG_PORT; fetch checkpoint > $NET/cp.http && cmp -s $NET/cp.http $NET/broker/data/log/checkpoint"
ok "a hash tile over HTTP is the published tile" wait_for 10 "tile over HTTP" sh -c \
	"$(declare -f fetch); BIN=$BIN NET=$NET LOG_PORT=$LOG_PORT; t=\$(cd $NET/broker/data/log && find tile/0 -type f | head -n 1); fetch \$t > $NET/tile.http && cmp -s $NET/tile.http $NET/broker/data/log/\$t"

# Two attachments of one name are refused at sending; two that a
# recipient would save under one name are both saved, the second renamed.
mkdir -p "$NET/a" "$NET/b"
echo one > "$NET/a/x.csv"; echo two > "$NET/b/x.csv"; echo dots > "$NET/a/..x.csv"
ok "two attachments of one name are refused" refused_send 2 "two files named x.csv" \
	--to BR-PF --text x --attach "$NET/a/x.csv" --attach "$NET/b/x.csv"
idx=$(enl AR-UIF send --to BR-PF --text names --attach "$NET/a/x.csv" --attach "$NET/a/..x.csv")
ok "BR-PF got the one with x.csv and ..x.csv" wait_for 20 "the inbox" test -e "$NET/BR-PF/spool/inbox/$idx.env"
enl BR-PF read --save "$NET/saved-x" "$idx" > /dev/null
ok "  ... both saved: x.csv" grep -qx one "$NET/saved-x/x.csv"
ok "  ... and x-2.csv" grep -qx dots "$NET/saved-x/x-2.csv"

# An inbox of many messages lists each once (the listing grows its table
# as it reads; a sanitizer build catches any pointer into the old one).
ids=()
for i in $(seq 1 40); do ids+=("$(enl AR-UIF send --to CO-FGN --subject "many $i" --text "many $i")"); done
ok "CO-FGN got the 40" wait_for 60 "the 40" test -e "$NET/CO-FGN/spool/inbox/${ids[39]}.env"
ok "  ... all of them" wait_for 30 "all 40" sh -c "[ \$(ls '$NET/CO-FGN/spool/inbox' | grep -c '\.env\$') -ge 41 ]"
enl CO-FGN inbox --json > "$NET/many.json"
ok "inbox lists the 41, each once, with its subject" python3 -c "
import json, sys; m = json.load(open('$NET/many.json'))
ids = [x['message_id'] for x in m]
assert len(m) == 41 and len(set(ids)) == 41, len(m)
want = {i: 'many %d' % (n + 1) for n, i in enumerate(sys.argv[1:])}
assert all(x['subject'] == want[x['message_id']] for x in m if x['message_id'] in want), m
assert set(want) <= set(ids)" "${ids[@]}"
# A listing keeps what it read: the next one opens only what changed.
ok "  ... and lists them all again, the same" sh -c "ENLACE_SOCKET=$NET/CO-FGN/agent.sock \
	$BIN/client/enlace inbox --json | cmp -s - '$NET/many.json'"
# A file changed on disk since (one byte of the ciphertext, the size the
# same) is checked again, not listed from what was kept: it no longer
# verifies, so it is not listed.
f="$NET/CO-FGN/spool/inbox/${ids[0]}.env"
python3 -c "
import sys; p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[len(b) - 80] ^= 1
open(p, 'r+b').write(b)" "$f"
enl CO-FGN inbox --json > "$NET/many2.json"
ok "a message changed on disk after a listing is checked again" python3 -c "
import json, sys; m = json.load(open('$NET/many2.json'))
ids = [x['message_id'] for x in m]
assert len(m) == 40 and sys.argv[1] not in ids, (len(m), sys.argv[1] in ids)" "${ids[0]}"
ok "  ... and read refuses it" sh -c "! ENLACE_SOCKET=$NET/CO-FGN/agent.sock \
	$BIN/client/enlace read ${ids[0]} > /dev/null 2>&1"
# A message that comes after a listing is in the next one.
late=$(enl AR-UIF send --to CO-FGN --subject late --text late)
ok "a message after a listing" wait_for 20 "the late one" test -e "$NET/CO-FGN/spool/inbox/$late.env"
ok "  ... is in the next one" sh -c "ENLACE_SOCKET=$NET/CO-FGN/agent.sock \
	$BIN/client/enlace inbox | grep -q '^$late .* late'"
# A message is verified once, on arrival: the listing takes the row the
# fetcher kept, and does not open the file again while it is the same
# file. (Shown by changing its bytes behind the agent's back with its
# size and time kept: the listing still shows what was verified; read,
# which opens the file, refuses the changed bytes.)
late2=$(enl AR-UIF send --to CO-FGN --subject "late two" --text late)
f="$NET/CO-FGN/spool/inbox/$late2.env"
ok "another message after a listing" wait_for 20 "the second late one" test -e "$f"
cp -p "$f" "$NET/late2.copy"
python3 -c "
import sys; p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[len(b) - 80] ^= 1
open(p, 'r+b').write(b)" "$f"
touch -r "$NET/late2.copy" "$f"
ok "  ... is listed from the fetcher's check, not opened again" sh -c \
	"ENLACE_SOCKET=$NET/CO-FGN/agent.sock $BIN/client/enlace inbox | grep -q '^$late2 .* late two'"
ok "  ... while read opens it, and refuses the changed bytes" sh -c "! ENLACE_SOCKET=$NET/CO-FGN/agent.sock \
	$BIN/client/enlace read $late2 > /dev/null 2>&1"
cp -p "$NET/late2.copy" "$f"

# The broker signs a writer round's receipts together (one signature,
# each receipt with its place in the batch): sixteen sessions at once
# (beside the agent's own: more than one agency's default share).
printf 'max_sessions_per_agency = 32\n' >>"$NET/broker/broker.conf"
stop_broker TERM && start_broker || finish
$BIN/tests/rawclient burst "tcp://127.0.0.1:$BROKER_PORT" "$NET/AR-UIF/key" \
	"$NET/directory" BR-PF 16 > "$NET/burst.out"
ok "receipts signed in one batch each verify alone" test $? = 0
ok "  ... every one" grep -q "^16 of 16 receipts verify" "$NET/burst.out"
# 10 MB of acknowledgements in one request: refused on its count, before
# anything is allocated for each (it took the broker from 146 to 684 MB)
rss() { awk '/^VmRSS/ {print $2}' "/proc/$(cat "$NET/broker/pid")/status"; }
before=$(rss)
ok "an ACK request of 85,000 acknowledgements refused" sh -c "\"$BIN/tests/rawclient\" acks tcp://127.0.0.1:$BROKER_PORT $NET/AR-UIF/key $NET/directory 85000 > $NET/raw.out 2>&1"
ok "  ... as malformed" grep -q "refused: malformed" "$NET/raw.out"
after=$(rss)
echo "broker VmRSS: $before kB before the 10 MB request, $after kB after"
ok "  ... the broker grew by less than 64 MB" test $((after - before)) -lt 65536
# (under AddressSanitizer the heap is its own, which keeps what is freed
# in quarantine: there, only the growth above is checked)
if ! ldd "$BIN/broker/enlace-broker" | grep -q libasan; then
	ok "  ... and gave back what the request took (within 8 MB of before)" \
		test $((after - before)) -lt 8192
fi
enl AR-UIF send --wait --json --to BR-PF --text "the kept receipt" > "$NET/wait.json"
ok "send --wait: the receipt kept at sending verifies, signature and log" python3 -c "
import json; r = json.load(open('$NET/wait.json'))
assert r['receipt_verified'] and r['log_verified'], r"

# The broker's folder, byte for byte, never holds the marker.
stop_broker TERM
# The audit log holds, with nothing but its files and the broker's card.
A="$BIN/client/enlace-audit verify $NET/broker/data/log --broker-pub $NET/broker/key/card"
ok "the audit log verifies" $A
$A --json > "$NET/audit.json"
ok "  ... and counts its entries" python3 -c "import json; d=json.load(open('$NET/audit.json')); assert d['valid'] and d['size'] >= 15, d"
# the partial tile the checkpoint names (earlier, narrower ones stay too)
size=$(sed -n 2p "$NET/broker/data/log/checkpoint")
if [ $((size % 256)) = 0 ]; then
	tile=$(printf 'tile/0/%03d' $((size / 256 - 1))) first=$((size - 256))
else
	tile=$(printf 'tile/0/%03d.p/%d' $((size / 256)) $((size % 256))) first=$((size / 256 * 256))
fi
cp "$NET/broker/data/log/$tile" "$NET/tile.bak"
printf '\x00\x00\x00\x00' | dd of="$NET/broker/data/log/$tile" bs=1 conv=notrunc 2>/dev/null
ok "a changed tile is found" sh -c "! $A 2> $NET/audit.err"
ok "  ... and named" grep -q "$tile: does not match the entries (first leaf it covers: $first)" "$NET/audit.err"
cp "$NET/tile.bak" "$NET/broker/data/log/$tile"
ok "the log holds again" $A
ok "no plaintext at the broker" sh -c "! grep -r -a -q '$marker' '$NET/broker'"
ok "options may come before the command" sh -c \
	"$BIN/client/enlace --socket $NET/AR-UIF/agent.sock --json status | grep -q '\"agency\":\"AR-UIF\"'"
finish

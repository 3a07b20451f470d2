#!/bin/bash
# The originator's consent: a forward of a message whose onward sharing is
# CONSENT is held; the broker asks the originator (never showing the
# content); a grant releases it, a denial refuses it with the reason, an
# unanswered request expires. Decisions signed by another agency, replayed,
# or naming another recipient or forward are refused; every step is in
# the audit log, and the original's trail shows the whole chain.
. "$(dirname "$0")/common.sh"
FETCH_WAIT=2s net_init AR-UIF:FIU BR-PF:POLICE CO-FGN:PROSECUTOR US-FINCEN:FIU
sed -i 's/^\[broker\]$/[broker]\nconsent_ttl = 60s/' "$NET/broker/broker.conf"
start_broker || finish
for a in AR-UIF BR-PF CO-FGN US-FINCEN; do start_agent $a || finish; done
R="$BIN/tests/rawclient"
U=tcp://127.0.0.1:$BROKER_PORT
A="$BIN/client/enlace-audit"
KEYS=(--directory "$NET/directory" --authority-pub "$NET/authority/authority.pub")
inbox_has() { test -e "$NET/$1/spool/inbox/$2.env"; }	# renamed in: whole
json_id() { python3 -c "import json,sys; print(json.load(sys.stdin)['message_id'])"; }
pending() { # pending FORWARD_ID: the request for it at AR-UIF, as JSON
	enl AR-UIF consent list --json | python3 -c "
import json, sys
for c in json.load(sys.stdin):
    if c['forward_id'] == '$1' and not c['decided']:
        print(json.dumps(c)); break
else: sys.exit(1)"
}
state_of() { # state_of SENDER MSG RECIPIENT: its state and reason in the receipt
	enl "$1" receipts --json "$2" | python3 -c "
import json, sys
for r in json.load(sys.stdin)['recipients']:
    if r['recipient'] == '$3': print(r['state'] + '|' + r.get('reason', ''))"
}

o=$(enl AR-UIF send --to BR-PF --tlp green --onward consent --text "the originator's secret detail")
ok "BR-PF got the original" wait_for 20 "BR-PF" inbox_has BR-PF "$o"
f=$(enl BR-PF forward "$o" --to CO-FGN --note "please" --wait --json | json_id)
is "the forward is held" "$(state_of BR-PF "$f" CO-FGN | cut -d'|' -f1)" "held for consent"
ok "the originator is asked" wait_for 20 "the request" pending "$f"
req=$(pending "$f")
rid=$(echo "$req" | python3 -c "import json,sys; print(json.load(sys.stdin)['request_id'])")
hash=$(echo "$req" | python3 -c "import json,sys; print(json.load(sys.stdin)['original_hash'])")
ok "the request names forwarder and recipient" python3 -c "
import json; c = json.loads('$req')
assert c['forwarder'] == 'BR-PF' and c['recipient'] == 'CO-FGN' and c['original_id'] == '$o', c"
# the request, as the originator reads it: who, to whom, never the content
rq=$(enl AR-UIF inbox --json | python3 -c "
import json, sys
print([m['message_id'] for m in json.load(sys.stdin) if m['sender'] == 'OAS-BROKER'][0])")
enl AR-UIF read "$rq" > "$NET/request.txt"
ok "the request names the forward" grep -q "BR-PF received your message $o and asks to forward it to CO-FGN" "$NET/request.txt"
ok "the request never shows the content" sh -c "! grep -q 'secret detail' '$NET/request.txt'"

# Decisions the broker refuses.
decide() { # decide WHAT KEY RECIPIENT FORWARD PATTERN
	"$R" decide "$U" "$NET/$2/key" "$NET/directory" "$rid" "$o" "$hash" "$4" "$3" > "$NET/raw.out" 2>&1
	ok "refused: $1" test $? = 0
	ok "  ... saying why" grep -q "$5" "$NET/raw.out"
}
decide "a decision signed by someone else than the originator" BR-PF CO-FGN "$f" "only the originator"
decide "a consent for CO-FGN used for US-FINCEN" AR-UIF US-FINCEN "$f" "does not match the request"
decide "a consent for one forward used for another" AR-UIF CO-FGN "$o" "does not match the request"
ok "CO-FGN has not got it" sh -c "! ls $NET/CO-FGN/spool/inbox | grep -q $f"

# The originator grants: released.
enl AR-UIF consent grant "$rid" --note "for the joint case" > "$NET/grant.txt"
is "the grant is receipted" $? 0
ok "CO-FGN gets the forward" wait_for 20 "CO-FGN" inbox_has CO-FGN "$f"
ok "the forwarder sees it delivered" wait_for 20 "delivered" sh -c "$(declare -f state_of enl); NET=$NET BIN=$BIN state_of BR-PF $f CO-FGN | grep -q 'acknowledged\|fetched\|queued'"
enl CO-FGN read "$f" > "$NET/read.txt"
ok "the third party reads the original, its signature verified" grep -q "signature VERIFIED" "$NET/read.txt"

# A replayed decision (a new envelope for a request already decided).
rm -f "$NET/AR-UIF/spool/consent/$rid"
enl AR-UIF consent grant "$rid" > /dev/null 2> "$NET/replay.err"
is "a second decision is refused" $? 1
ok "  ... as decided already" grep -q "decided already" "$NET/replay.err"

# A denial: refused, with the reason, for the forwarder to see.
f2=$(enl BR-PF forward "$o" --to US-FINCEN --wait --json | json_id)
ok "the second request comes" wait_for 20 "request 2" pending "$f2"
rid2=$(pending "$f2" | python3 -c "import json,sys; print(json.load(sys.stdin)['request_id'])")
enl AR-UIF consent deny "$rid2" --reason "ongoing undercover operation" > /dev/null
is "the denial is receipted" $? 0
s2=$(state_of BR-PF "$f2" US-FINCEN)
is "the forward is refused" "${s2%%|*}" "rejected"
ok "  ... with the originator's reason" sh -c "echo '$s2' | grep -q 'consent denied by AR-UIF: ongoing undercover operation'"
# the log, read by every member, has the decision, never its free text
ok "  ... the denial is in the audit log" wait_for 10 "the log" sh -c \
	"grep -rqa 'consent denied by AR-UIF' $NET/broker/data/log"
ok "  ... but not its reason" sh -c "! grep -rqa 'undercover' $NET/broker/data/log"

# A grant while the broker does not answer: decided at once (a second
# decision is refused), and the other commands go on while it waits.
o4=$(enl AR-UIF send --to BR-PF --tlp green --onward consent --text "fourth")
ok "BR-PF got the fourth" wait_for 20 "BR-PF" inbox_has BR-PF "$o4"
f4=$(enl BR-PF forward "$o4" --to CO-FGN --wait --json | json_id)
ok "the fourth request comes" wait_for 20 "request 4" pending "$f4"
rid4=$(pending "$f4" | python3 -c "import json,sys; print(json.load(sys.stdin)['request_id'])")
kill -STOP "$(cat "$NET/broker/pid")"
(enl AR-UIF consent grant "$rid4" > "$NET/grant4.out" 2>&1; echo $? > "$NET/grant4.rc") &
ok "the grant is in the outbox" wait_for 10 "the grant" grep -q "consent decision .* (grant) in the outbox" "$NET/AR-UIF/log"
ok "  ... meanwhile status answers" eval "enl AR-UIF status > '$NET/status4.txt'; [ \$? -le 1 ] && test -s '$NET/status4.txt'"
enl AR-UIF consent grant "$rid4" > /dev/null 2> "$NET/again4.err"
is "  ... a second decision is refused at once" $? 1
ok "  ... as decided already" grep -q "decided already (granted)" "$NET/again4.err"
kill -CONT "$(cat "$NET/broker/pid")"
ok "the grant is receipted once the broker answers" wait_for 70 "the grant" test -s "$NET/grant4.rc"
is "  ... and succeeds" "$(cat "$NET/grant4.rc")" 0
ok "CO-FGN gets the fourth forward" wait_for 20 "CO-FGN" inbox_has CO-FGN "$f4"

# The whole chain in the audit log, from the original's trail.
ok "the trail of the original shows the chain" wait_for 20 "the log" sh -c "$A trail $o --log $NET/broker/data/log ${KEYS[*]} > $NET/trail.txt && grep -q CONSENT_DENIED $NET/trail.txt"
for ev in SUBMITTED HELD_FOR_CONSENT CONSENT_REQUESTED CONSENT_GRANTED CONSENT_DENIED; do
	ok "  ... $ev" grep -q " $ev " "$NET/trail.txt"
done
ok "  ... to the third party's acknowledgement of the forward" wait_for 20 "the ack in the log" sh -c "$A trail $o --log $NET/broker/data/log ${KEYS[*]} | grep -q 'ACKED .*by CO-FGN .message .*VERIFIED'"
ok "the chain goes into an evidence bundle" $A prove "$o" --log "$NET/broker/data/log" "${KEYS[@]}" --out "$NET/chain.bundle"
ok "  ... that checks offline" $A check-bundle "$NET/chain.bundle" --authority-pub "$NET/authority/authority.pub"

# Unanswered: the request expires and the forward is refused; a late
# decision is refused.
stop_broker TERM
sed -i 's/^consent_ttl = .*/consent_ttl = 2s/' "$NET/broker/broker.conf"
start_broker || finish
f3=$(enl BR-PF forward "$o" --to CO-FGN --note again --wait --json | json_id)
ok "the third request comes" wait_for 20 "request 3" pending "$f3"
rid3=$(pending "$f3" | python3 -c "import json,sys; print(json.load(sys.stdin)['request_id'])")
ok "unanswered, it expires and the forward is refused" wait_for 20 "expiry" sh -c "$(declare -f state_of enl); NET=$NET BIN=$BIN state_of BR-PF $f3 CO-FGN | grep -q 'rejected|consent request expired'"
enl AR-UIF consent grant "$rid3" > /dev/null 2> "$NET/late.err"
is "a decision for an expired request is refused" $? 1
ok "  ... as expired" grep -q "expired" "$NET/late.err"
ok "  ... and not recorded as decided" pending "$f3"
finish

#!/bin/bash
# A forward of a forward: the originator is the agency that signed the
# innermost original, at every hop. AR-UIF sends with onward sharing
# CONSENT to BR-PF; BR-PF forwards to BR-COAF (AR-UIF consents); BR-COAF
# forwards what it got to CO-FGN: the consent request goes to AR-UIF,
# never to BR-PF, names AR-UIF's original, and the original's trail in
# the audit log shows both hops.
. "$(dirname "$0")/common.sh"
FETCH_WAIT=2s net_init AR-UIF:FIU BR-PF:POLICE BR-COAF:FIU CO-FGN:PROSECUTOR
start_broker || finish
for a in AR-UIF BR-PF BR-COAF CO-FGN; do start_agent $a || finish; done
A="$BIN/client/enlace-audit"
KEYS=(--directory "$NET/directory" --authority-pub "$NET/authority/authority.pub")
inbox_has() { test -e "$NET/$1/spool/inbox/$2.env"; }
json_id() { python3 -c "import json,sys; print(json.load(sys.stdin)['message_id'])"; }
pending() { # pending AGENCY FORWARD_ID: the undecided request for it, as JSON
	enl "$1" consent list --json | python3 -c "
import json, sys
for c in json.load(sys.stdin):
    if c['forward_id'] == '$2' and not c['decided']:
        print(json.dumps(c)); break
else: sys.exit(1)"
}
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])['$2'])" "$1"; }

o=$(enl AR-UIF send --to BR-PF --tlp green --onward consent --text "the original") || finish
ok "BR-PF got the original" wait_for 20 "BR-PF" inbox_has BR-PF "$o"

# hop 1: BR-PF -> BR-COAF, AR-UIF consents
f1=$(enl BR-PF forward "$o" --to BR-COAF --wait --json | json_id)
ok "AR-UIF is asked for hop 1" wait_for 20 "the request" pending AR-UIF "$f1"
r1=$(pending AR-UIF "$f1")
ok "  ... for its own original" test "$(field "$r1" original_id)" = "$o"
enl AR-UIF consent grant "$(field "$r1" request_id)" >/dev/null
ok "BR-COAF gets hop 1 once consented" wait_for 20 "BR-COAF" inbox_has BR-COAF "$f1"

# hop 2: BR-COAF forwards what BR-PF forwarded to it
f2=$(enl BR-COAF forward "$f1" --to CO-FGN --wait --json | json_id)
ok "hop 2 was accepted by the broker" test ${#f2} = 32
ok "the originator AR-UIF is asked for hop 2" wait_for 20 "the request" pending AR-UIF "$f2"
r2=$(pending AR-UIF "$f2")
is "  ... naming its own original, not BR-PF's forward" "$(field "$r2" original_id)" "$o"
is "  ... the forwarder is BR-COAF" "$(field "$r2" forwarder)" BR-COAF
ok "BR-PF is never asked (it is not the originator)" sh -c "! enl_out=\$(ENLACE_SOCKET=$NET/BR-PF/agent.sock $BIN/client/enlace consent list --json) || ! echo \"\$enl_out\" | grep -q $f2"
ok "CO-FGN does not have it before the consent" sh -c "! test -e $NET/CO-FGN/spool/inbox/$f2.env"
enl AR-UIF consent grant "$(field "$r2" request_id)" >/dev/null
ok "CO-FGN gets hop 2 once AR-UIF consents" wait_for 20 "CO-FGN" inbox_has CO-FGN "$f2"

# a forward of a forward never weakens the innermost original either
refused=$(enl BR-COAF forward "$f1" --to CO-FGN --onward free 2>&1) && refused=""
ok "hop 2 cannot relax onward sharing" test -n "$refused"

# the original's trail shows both hops
ok "the trail of the original shows hop 2" wait_for 20 "the log" sh -c \
	"$A trail $o --log $NET/broker/data/log ${KEYS[*]} --json --quiet | grep -q $f2"
$A trail "$o" --log "$NET/broker/data/log" "${KEYS[@]}" --json --quiet > "$NET/trail.txt"
ok "  ... and hop 1" grep -q "$f1" "$NET/trail.txt"
finish

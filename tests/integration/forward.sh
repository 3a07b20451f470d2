#!/bin/bash
# Forwards to a third party: the original's signed envelope goes with the
# forward and the third party checks the originator's signature (chain of
# custody); handling is enforced by the agent and, whatever a client
# builds by hand, by the broker: RED, AMBER+STRICT and NEVER are never
# forwarded, AMBER stays in the country, a forward never weakens the
# original, only a recipient may forward, and with onward sharing CONSENT
# the forward is held.
. "$(dirname "$0")/common.sh"
FETCH_WAIT=2s net_init AR-UIF:FIU BR-PF:POLICE BR-COAF:FIU CO-FGN:PROSECUTOR US-FINCEN:FIU
start_broker || finish
for a in AR-UIF BR-PF BR-COAF CO-FGN; do start_agent $a || finish; done
R="$BIN/tests/rawclient"
U=tcp://127.0.0.1:$BROKER_PORT
inbox_has() { test -e "$NET/$1/spool/inbox/$2.env"; }	# renamed in: whole
send_to_brpf() { # send_to_brpf TLP ONWARD TEXT: an id, once BR-PF has it
	local id
	id=$(enl AR-UIF send --to BR-PF --tlp "$1" --onward "$2" --text "$3")
	wait_for 20 "BR-PF to get $id" inbox_has BR-PF "$id" && echo "$id"
}

# A GREEN, FREE message forwarded to a third country: delivered, with its chain.
g=$(send_to_brpf green free "original body from AR-UIF")
ok "BR-PF got the original" test ${#g} = 32
f=$(enl BR-PF forward "$g" --to CO-FGN --note "for your case")
ok "forward accepted by BR-PF's agent" test ${#f} = 32
ok "CO-FGN gets the forward" wait_for 20 "CO-FGN" inbox_has CO-FGN "$f"
enl CO-FGN read "$f" > "$NET/read.txt"
ok "read shows the chain of custody" grep -q "CHAIN OF CUSTODY" "$NET/read.txt"
ok "  ... the original by AR-UIF, signature verified" grep -A2 "1. original $g" "$NET/read.txt" | grep -q "signature VERIFIED"
ok "  ... and its body" grep -q "original body from AR-UIF" "$NET/read.txt"
enl CO-FGN read --json "$f" > "$NET/read.json"
ok "read --json: original sender and handling" python3 -c "
import json; m = json.load(open('$NET/read.json'))
assert m['forward_of'] == '$g' and m['original']['sender'] == 'AR-UIF', m
assert m['original']['signature_verified'] and m['original']['tlp'] == 'green', m"

# The agent refuses locally what the broker would refuse.
refused_locally() { # refused_locally ID TO PATTERN
	enl BR-PF forward "$1" --to "$2" > /dev/null 2> "$NET/err.txt"
	[ $? != 0 ] && grep -q "$3" "$NET/err.txt"
}
r=$(send_to_brpf red consent "red")
ok "RED is never forwarded (agent)" refused_locally "$r" CO-FGN "TLP:RED"
s=$(send_to_brpf amber+strict consent "strict")
ok "AMBER+STRICT is never forwarded (agent)" refused_locally "$s" CO-FGN "AMBER+STRICT"
n=$(send_to_brpf green never "never")
ok "onward NEVER is never forwarded (agent)" refused_locally "$n" CO-FGN "NEVER"
a=$(send_to_brpf amber free "amber")
ok "AMBER does not leave the country (agent)" refused_locally "$a" CO-FGN "TLP:AMBER"
ok "a forward to the forwarder itself (agent)" refused_locally "$g" BR-PF "BR-PF is the forwarder itself"
ok "a forward back to the originator (agent)" refused_locally "$g" AR-UIF "AR-UIF is the originator"
fa=$(enl BR-PF forward "$a" --to BR-COAF)
ok "AMBER within the country is forwarded" wait_for 20 "BR-COAF" inbox_has BR-COAF "$fa"

# The broker refuses them too, however the forward is made.
bypass() { # bypass WHAT ORIG TO TLP ONWARD [no-link] PATTERN
	local what=$1 pat=${!#}
	shift
	"$R" forward "$U" "$NET/BR-PF/key" "$NET/directory" "${@:1:$(($# - 1))}" > "$NET/raw.out" 2>&1
	ok "broker refuses: $what" test $? = 0
	ok "  ... saying why" grep -q "$pat" "$NET/raw.out"
}
bypass "a forward of RED" "$r" CO-FGN red consent "TLP:RED"
bypass "a forward of AMBER+STRICT" "$s" CO-FGN amber+strict consent "AMBER+STRICT"
bypass "a forward of NEVER" "$n" CO-FGN green never "forbids onward sharing"
bypass "a forward that lowers TLP" "$a" BR-COAF green free "never weaken"
bypass "a forward that relaxes onward sharing" "$(send_to_brpf green consent c)" CO-FGN green free "never weaken"
bypass "a forward that relaxes evidential use" "$g" CO-FGN green free may-use "never weaken"
bypass "a forward of a message one never received" "$(enl AR-UIF send --to US-FINCEN --tlp green --onward free --text x)" CO-FGN green free "never received"
bypass "a forward to the forwarder itself" "$g" BR-PF green free "BR-PF is the forwarder itself"
bypass "a forward back to the originator" "$g" AR-UIF green free "AR-UIF is the originator"
bypass "a FORWARD without forward-of" "$g" CO-FGN green free no-link "malformed"
bypass "forward-of on a message that is not a FORWARD" "$g" CO-FGN green free as-case "only a FORWARD"
bypass "a forward of a message the broker never relayed" 00112233445566778899aabbccddeeff CO-FGN green free "never relayed"
ok "every refusal is in the broker's log" test "$(grep -c 'refused SUBMIT' "$NET/broker/log")" -ge 12

# Onward sharing CONSENT: the broker holds the forward.
c=$(send_to_brpf green consent "needs consent")
fc=$(enl BR-PF forward "$c" --to CO-FGN --wait --json | python3 -c "import json,sys; print(json.load(sys.stdin)['message_id'])")
enl BR-PF receipts --json "$fc" > "$NET/held.json"
ok "the forward is held for the originator's consent" python3 -c "
import json; r = json.load(open('$NET/held.json'))['recipients'][0]
assert r['recipient'] == 'CO-FGN' and r['state'] == 'held for consent', r"
marker=$(enl AR-UIF send --to CO-FGN --tlp green --onward free --text "after")
ok "CO-FGN gets a later message" wait_for 20 "CO-FGN later" inbox_has CO-FGN "$marker"
ok "  ... but not the held forward" sh -c "! ls $NET/CO-FGN/spool/inbox | grep -q $fc"
finish

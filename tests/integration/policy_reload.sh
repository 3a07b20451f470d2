#!/bin/bash
# The routing policy at work: a recipient the policy refuses never blocks
# the others, and the receipt and the audit log name the rule; SIGHUP with
# a broken file keeps the policy in force, with a good one switches, and
# every message is decided whole by one policy.
. "$(dirname "$0")/common.sh"
cat > "$NET/fiu-only.conf" <<'POL'
# FIUs write to FIUs; nothing else
rule fiu-only: allow
    from kind FIU
    to kind FIU
POL
FETCH_WAIT=2s LOG_POLL=300ms POLICY="$NET/fiu-only.conf" net_init AR-UIF:FIU BR-PF:POLICE US-FINCEN:FIU
start_broker || finish
for a in AR-UIF BR-PF US-FINCEN; do start_agent $a || finish; done
A="$BIN/client/enlace-audit"
KEYS=(--directory "$NET/directory" --authority-pub "$NET/authority/authority.pub")
LOG=$NET/broker/data/log

id=$(enl AR-UIF send --to BR-PF --to US-FINCEN --text "one")
ok "US-FINCEN gets it" wait_for 20 "US-FINCEN" test -e "$NET/US-FINCEN/spool/inbox/$id.env"
enl AR-UIF receipts --json "$id" > "$NET/r.json"
ok "the receipt: BR-PF rejected by the default rule, US-FINCEN not blocked" python3 -c "
import json; r = {x['recipient']: x for x in json.load(open('$NET/r.json'))['recipients']}
assert r['BR-PF']['state'] == 'rejected' and 'default-deny' in r['BR-PF']['reason'], r
assert r['US-FINCEN']['state'] in ('queued', 'fetched', 'acknowledged'), r"
ok "the log records both decisions" wait_for 20 "the log" sh -c "$A trail $id --log $LOG ${KEYS[*]} > $NET/trail.txt && grep -q 'REJECTED .*BR-PF.*default-deny' $NET/trail.txt && grep -q 'QUEUED .*US-FINCEN' $NET/trail.txt"

# refused for every recipient: nothing of its bytes is kept (a large one
# neither), so that one agency cannot fill the broker's disk with them
head -c $((3 * 1024 * 1024)) /dev/urandom > "$NET/big.bin"
big=$(enl AR-UIF send --wait --json --to BR-PF --text "big, to a refused recipient" \
	--attach "$NET/big.bin" 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)['message_id'])")
ok "a message refused for its only recipient is receipted" test ${#big} = 32
DB=$NET/broker/data/store.sqlite
is "  ... its envelope is not kept in the store" \
	"$(sqlite3 "$DB" "select length(envelope) from messages where hex(id) = upper('$big')")" 0
ok "  ... nor as a file" sh -c "! find $NET/broker/data -iname '$big*' | grep -q ."
ok "  ... and the broker says so, counting AR-UIF's refused bytes" grep -q \
	"refused for every recipient: its [0-9]* bytes are not kept (AR-UIF: 1 such messages, [0-9]* bytes since the start)" \
	"$NET/broker/log"
is "  ... the one delivered is kept" \
	"$(sqlite3 "$DB" "select length(envelope) > 0 from messages where hex(id) = upper('$id')")" 1

# a broken file: refused whole, the old policy stays
printf 'rule broken: allow\n    from kind NOSUCHKIND\n    to any\n' > "$NET/broker/policy.conf"
kill -HUP "$(cat "$NET/broker/pid")"
ok "the broker refuses the broken policy" wait_for 10 "refusal" grep -q "refused whole, the policy in force stays" "$NET/broker/log"
enl AR-UIF send --to BR-PF --to US-FINCEN --text "two" --wait --json > "$NET/two.json" 2> "$NET/two.err"
is "send --wait exits 1 when the broker refuses a recipient" $? 1
id2=$(python3 -c "import json,sys; print(json.load(sys.stdin)['message_id'])" < "$NET/two.json")
ok "  ... naming it and why" grep -q "not sent to BR-PF: .*default-deny" "$NET/two.err"
enl AR-UIF receipts --json "$id2" > "$NET/r.json"
ok "the old policy still decides" python3 -c "
import json; r = {x['recipient']: x for x in json.load(open('$NET/r.json'))['recipients']}
assert r['BR-PF']['state'] == 'rejected', r"

# a good file: in force once its POLICY_LOADED entry is stored
printf 'rule open-v2: allow\n    from any\n    to any\n' > "$NET/broker/policy.conf"
kill -HUP "$(cat "$NET/broker/pid")"
ok "the new policy is in force" wait_for 10 "new policy" grep -q "policy in force: .*(1 rules)" "$NET/broker/log"
id3=$(enl AR-UIF send --to BR-PF --to US-FINCEN --text "three")
ok "BR-PF gets the next message" wait_for 20 "BR-PF" test -e "$NET/BR-PF/spool/inbox/$id3.env"
is "BR-PF never got the refused ones" "$(ls "$NET/BR-PF/spool/inbox" | grep -c "$id\|$id2")" 0

# switching while messages stream: each message decided by one policy
printf 'rule open-v3: allow\n    from any\n    to any\n' > "$NET/v3.conf"
ids=()
for i in $(seq 1 30); do
	ids+=("$(enl AR-UIF send --to BR-PF --to US-FINCEN --text "s$i")")
	if [ "$i" = 10 ]; then
		cp "$NET/v3.conf" "$NET/broker/policy.conf"
		kill -HUP "$(cat "$NET/broker/pid")"
	fi
done
ok "all 30 receipted" wait_for 30 "receipts" sh -c "[ -z \"\$(ls $NET/AR-UIF/spool/outbox)\" ]"
ok "v3 in force (the third policy put in force)" wait_for 10 "v3" sh -c "[ \$(grep -c 'policy in force:' $NET/broker/log) = 3 ]"
mixed=0 seen_v2=0 seen_v3=0 missing=0
for m in "${ids[@]}"; do
	if ! wait_for 20 "$m in the log" sh -c "$A trail $m --log $LOG ${KEYS[*]} > $NET/t.txt && [ \$(grep -c QUEUED $NET/t.txt) = 2 ]"; then
		missing=$((missing + 1))
		continue
	fi
	rules=$(grep -o 'allowed by policy rule [a-z0-9-]*' "$NET/t.txt" | sort -u | wc -l)
	[ "$rules" = 1 ] || mixed=$((mixed + 1))
	grep -q open-v2 "$NET/t.txt" && seen_v2=$((seen_v2 + 1))
	grep -q open-v3 "$NET/t.txt" && seen_v3=$((seen_v3 + 1))
done
is "every message's two decisions are in the log" "$missing" 0
is "no message decided by two policies" "$mixed" 0
ok "the stream saw both policies ($seen_v2 by v2, $seen_v3 by v3)" test $((seen_v2 + seen_v3)) = 30 -a "$seen_v3" -gt 0
finish

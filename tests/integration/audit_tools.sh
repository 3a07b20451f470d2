#!/bin/bash
# The auditor's tools against a live broker: the log over HTTP, the trail
# of a message with each acknowledgement checked, an evidence bundle that
# checks offline and fails on any changed byte, and the per-agency report.
. "$(dirname "$0")/common.sh"
FETCH_WAIT=2s LOG_POLL=300ms net_init AR-UIF:FIU BR-PF:POLICE US-FINCEN:FIU OAS-AUDIT:AUDITOR
start_broker || finish
for a in AR-UIF BR-PF US-FINCEN; do start_agent $a || finish; done
A="$BIN/client/enlace-audit"
LOG=$NET/broker/data/log
URL=http://127.0.0.1:$LOG_PORT
KEYS=(--directory "$NET/directory" --authority-pub "$NET/authority/authority.pub")
READER=(--key "$NET/OAS-AUDIT/key")	# the log over HTTP: to directory members

id=$(enl AR-UIF send --to BR-PF --to US-FINCEN --case CASE-2026-0042 --text "first")
ok "acknowledged by both" wait_for 20 "acks" sh -c "[ \$(ENLACE_SOCKET=$NET/AR-UIF/agent.sock $BIN/client/enlace receipts --json $id | grep -o acknowledged | wc -l) = 2 ]"
# the log publishes every step (at most a second later), and every agency cosigns it
ok "both acknowledgements published" wait_for 20 "the log" sh -c "$A trail $id --log $LOG ${KEYS[*]} | grep -c 'signature VERIFIED' | grep -qx 2"
for a in AR-UIF BR-PF US-FINCEN; do
	ok "$a cosigned the published checkpoint" wait_for 20 "$a cosignature" cosigned $a "$(sed -n 2p "$LOG/checkpoint")"
done

ok "verify over HTTP" $A verify "$URL" --broker-pub "$NET/broker/key/card" "${READER[@]}"
ok "verify of the folder" $A verify "$LOG" --broker-pub "$NET/broker/key/card"
# a wrong path, a log that cannot be reached or an agency's card is the
# auditor's mistake, and is never reported as a log that is NOT VALID
$A verify "$NET/nothing" --broker-pub "$NET/broker/key/card" 2> "$NET/v.err"
is "a folder that does not exist: exit 1" $? 1
ok "  ... cannot check, not NOT VALID" grep -q "nothing: cannot check: no such folder" "$NET/v.err"
$A verify "http://127.0.0.1:$(free_port)" --broker-pub "$NET/broker/key/card" "${READER[@]}" --json > "$NET/v.json"
ok "an address where no log answers: not checked" python3 -c "
import json; v = json.load(open('$NET/v.json'))
assert not v['valid'] and not v['checked'] and 'cannot be reached' in v['error'], v"
$A verify "$LOG" --broker-pub "$NET/AR-UIF/key/card" 2> "$NET/v.err"
is "an agency's card as --broker-pub: exit 2" $? 2
ok "  ... said so" grep -q "the card of AR-UIF, which is not a broker" "$NET/v.err"
mkdir "$NET/emptylog"
$A verify "$NET/emptylog" --broker-pub "$NET/broker/key/card" 2> "$NET/v.err"
ok "a folder without a checkpoint is NOT VALID" grep -q "NOT VALID: no checkpoint" "$NET/v.err"

# trail: every step, from the folder and over HTTP alike
$A trail "$id" --log "$LOG" "${KEYS[@]}" > "$NET/trail.txt"
is "trail exits 0" $? 0
for ev in SUBMITTED QUEUED FETCHED ACKED; do
	ok "trail shows $ev" grep -q " $ev " "$NET/trail.txt"
done
is "two acknowledgements verified" "$(grep -c 'signature VERIFIED' "$NET/trail.txt")" 2
$A trail "$id" --log "$URL" "${KEYS[@]}" "${READER[@]}" > "$NET/trail-http.txt"
ok "the same trail over HTTP" cmp "$NET/trail.txt" "$NET/trail-http.txt"
$A trail "$id" --log "$LOG" "${KEYS[@]}" --json > "$NET/trail.json"
ok "trail --json: 7 entries, both acks valid" python3 -c "
import json; t = json.load(open('$NET/trail.json'))
assert t['valid'] and len(t['entries']) == 7, t
assert [e['ack_signature_valid'] for e in t['entries'] if e['event'] == 'ACKED'] == [True, True]"
$A trail 00000000000000000000000000000000 --log "$LOG" "${KEYS[@]}" 2> "$NET/none.err"
is "an unknown message: exit 1" $? 1
ok "  ... says so" grep -q "not in the log" "$NET/none.err"

# prove / check-bundle
ok "prove writes a bundle" $A prove "$id" --log "$URL" "${KEYS[@]}" "${READER[@]}" --out "$NET/evidence.bundle"
$A prove "$id" --log "$URL" "${KEYS[@]}" "${READER[@]}" --out "$NET/evidence.bundle" 2>/dev/null
is "prove never overwrites" $? 1
$A check-bundle "$NET/evidence.bundle" --authority-pub "$NET/authority/authority.pub" > "$NET/check.txt"
is "the bundle checks offline" $? 0
ok "  ... with every agency's cosignature" grep -q "cosigned by AR-UIF,BR-PF,US-FINCEN" "$NET/check.txt"
$BIN/keys/enlace-keys authority init --no-passphrase "$NET/other-authority" >/dev/null
$A check-bundle "$NET/evidence.bundle" --authority-pub "$NET/other-authority/authority.pub" 2> "$NET/check.err"
is "another authority's key: refused" $? 1
ok "  ... the directory is named" grep -q "directory does not verify" "$NET/check.err"
ok "every changed byte of the bundle is refused" "$BIN/tests/bundle_flip" "$NET/evidence.bundle" "$NET/authority/authority.pub"
# an entry taken out of the bundle (any but the last) is seen: each entry
# names the one before it about the same message
python3 - "$NET/evidence.bundle" "$NET" <<'PY' > "$NET/cut.txt"
import sys
b = open(sys.argv[1], "rb").read()
def varint(p):
    v = s = 0
    while True:
        c = b[p]; p += 1; v |= (c & 0x7f) << s; s += 7
        if c < 0x80: return v, p
recs, p = [], 0
while p < len(b):
    start = p
    key, p = varint(p)
    if key & 7 == 2:
        n, p = varint(p); p += n
    elif key & 7 == 0:
        _, p = varint(p)
    else:
        raise SystemExit("unexpected wire type")
    recs.append((key >> 3, start, p))
entries = [r for r in recs if r[0] == 5]
print(len(entries))
for k in range(len(entries) - 1):	# every entry but the last, one at a time
    _, a, z = entries[k]
    open(f"{sys.argv[2]}/cut-{k}.bundle", "wb").write(b[:a] + b[z:])
PY
n=$(cat "$NET/cut.txt")
ok "the bundle holds several entries ($n)" test "$n" -gt 3
bad=0
for k in $(seq 0 $((n - 2))); do
	$A check-bundle "$NET/cut-$k.bundle" --authority-pub "$NET/authority/authority.pub" \
		>/dev/null 2>"$NET/cut.err" && bad=$((bad + 1))
done
is "a bundle with any one entry taken out (but the last) is NOT VALID" "$bad" 0
ok "  ... saying it is incomplete" grep -q "incomplete: entry .* which the bundle does not hold\|does not name the entry before it" "$NET/cut.err"
# a cosignature that does not verify is blamed on its cosigner, not the broker
python3 - "$NET/evidence.bundle" "$NET/badcosig.bundle" <<'PY' > "$NET/cosigner.txt"
import re, sys
b = open(sys.argv[1], "rb").read()
m = re.search(rb"\xe2\x80\x94 ([A-Z]{2,8}-[A-Z0-9_-]+) ([A-Za-z0-9+/=]{20,})\n", b)
sig = m.group(2)
i = m.start(2) + 10
flip = b"B" if b[i:i + 1] != b"B" else b"C"
open(sys.argv[2], "wb").write(b[:i] + flip + b[i + 1:])
print(m.group(1).decode())
PY
cosigner=$(cat "$NET/cosigner.txt")
$A check-bundle "$NET/badcosig.bundle" --authority-pub "$NET/authority/authority.pub" 2> "$NET/badcosig.err"
is "a bundle whose checkpoint carries a bad cosignature: exit 1" $? 1
ok "  ... naming the cosigner ($cosigner), not the broker" \
	grep -q "the cosignature of .*$cosigner.* does not verify (the broker's own signature does)" "$NET/badcosig.err"
# report: the day's counts per agency
today=$(date -u +%F) tomorrow=$(date -u -d tomorrow +%F)
$A report --log "$LOG" --broker-pub "$NET/broker/key/card" --since "$today" --until "$tomorrow" --format json > "$NET/report.json"
ok "report counts sent, delivered, acknowledged, pending" python3 -c "
import json; rows = {r['agency']: r for r in json.load(open('$NET/report.json'))}
assert rows['AR-UIF']['sent'] == 1, rows
for r in ('BR-PF', 'US-FINCEN'):
    assert (rows[r]['delivered'], rows[r]['acknowledged'], rows[r]['pending']) == (1, 1, 0), rows"
$A report --log "$LOG" --broker-pub "$NET/broker/key/card" --since "$today" --until "$tomorrow" > "$NET/report.csv"
ok "report as CSV" grep -q "^day,agency,sent,delivered,acknowledged,rejected,pending" "$NET/report.csv"
$A report --log "$LOG" --broker-pub "$NET/broker/key/card" --since "$tomorrow" --until "$today" 2>/dev/null
is "report: until before since is a usage error" $? 2
# the log grows: the broker keeps its newest cosigned checkpoint beside
# the published one, and a bundle takes it
size0=$(sed -n 2p "$LOG/checkpoint")
enl AR-UIF send --to BR-PF --text "more" > /dev/null
ok "the log grows" wait_for 20 "growth" sh -c "[ \$(sed -n 2p $LOG/checkpoint) -gt $size0 ]"
for a in AR-UIF BR-PF US-FINCEN; do
	ok "$a cosigns the grown log" wait_for 20 "$a cosignature" cosigned $a "$(sed -n 2p "$LOG/checkpoint")"
done
ok "the broker keeps its newest cosigned checkpoint" sh -c "[ \$(grep -c '^— [A-Z]*-' $LOG/cosigned-checkpoint) = 3 ]"
ok "prove after growth" $A prove "$id" --log "$URL" "${KEYS[@]}" "${READER[@]}" --out "$NET/later.bundle"
$A check-bundle "$NET/later.bundle" --authority-pub "$NET/authority/authority.pub" > "$NET/later.txt"
ok "  ... with every agency's cosignature" grep -q "cosigned by AR-UIF,BR-PF,US-FINCEN" "$NET/later.txt"
# a message to a recipient whose agent is away stays pending
stop_agent US-FINCEN TERM
id2=$(enl AR-UIF send --to US-FINCEN --text "second" --wait --json | python3 -c "import json,sys; print(json.load(sys.stdin)['message_id'])")
ok "sent while US-FINCEN is away" test ${#id2} = 32
ok "the log publishes it" wait_for 20 "published" sh -c "$A report --log $LOG --broker-pub $NET/broker/key/card --since $today --until $tomorrow --format json | python3 -c \"import json,sys; r={x['agency']: x for x in json.load(sys.stdin)}; sys.exit(r['US-FINCEN']['pending'] != 1)\""

# An acknowledgement the broker logged after the recipient's key was
# revoked (a broker on an older directory took it): the auditor, with the
# newer directory, is told not to rely on it.
$BIN/keys/enlace-keys directory revoke --authority "$NET/authority" --in "$NET/directory" \
	--id BR-PF --reason "device seized" --out "$NET/directory.rev" > /dev/null || finish
rev=$(date +%s)
ok "the clock is past the revocation's second" wait_for 5 "the next second" sh -c "[ \$(date +%s) -gt $rev ]"
id3=$(enl AR-UIF send --to BR-PF --text "after the seizure")
ok "BR-PF's acknowledgement is published" wait_for 20 "the ack" sh -c \
	"$A trail $id3 --log $LOG ${KEYS[*]} | grep -q 'ACKED .*by BR-PF'"
$A trail "$id3" --log "$LOG" --directory "$NET/directory.rev" \
	--authority-pub "$NET/authority/authority.pub" > "$NET/rev.txt"
is "trail with the newer directory: exit 1" $? 1
ok "  ... the ack is by a key revoked before it" grep -q "signature by a key REVOKED before it, at .*: do not rely on it" "$NET/rev.txt"
$A trail "$id" --log "$LOG" --directory "$NET/directory.rev" \
	--authority-pub "$NET/authority/authority.pub" > /dev/null
is "  ... an ack from before the revocation still holds" $? 0
# ... and the sender, once its agent holds that directory, is told too
serial=$($BIN/keys/enlace-keys directory show "$NET/directory.rev" | sed -n 's/^directory serial //p')
cp "$NET/directory.rev" "$NET/directory"
kill -HUP "$(cat "$NET/broker/pid")"
ok "the broker puts the revocation in force" wait_for 10 "serial $serial" \
	grep -q "directory serial $serial in force" "$NET/broker/log"
stop_agent AR-UIF && start_agent AR-UIF || finish
ok "  ... and AR-UIF takes it" wait_for 20 "AR-UIF's directory" sh -c "ENLACE_SOCKET=$NET/AR-UIF/agent.sock \
	$BIN/client/enlace status --json | grep -q '\"directory_serial\":$serial'"
enl AR-UIF receipts "$id3" > "$NET/rev-receipt.txt"
is "  ... receipts of the message exits 1" $? 1
ok "  ... saying why" grep -q "note: the acknowledgement of BR-PF is signed by a key revoked at .*, before it" \
	"$NET/rev-receipt.txt"

# C2SP tlog-tiles: every checkpoint a receipt handed out has its partial
# tiles served (or the full tile that replaces them), over HTTP
stop_broker TERM && start_broker || finish	# publishes everything committed
python3 - "$NET/AR-UIF/spool/sent" "$BIN/tests/httpraw" "$LOG_PORT" "$NET/OAS-AUDIT/key" <<'PY' >"$NET/partials.txt"
import glob, re, subprocess, sys
sent, httpraw, port, key = sys.argv[1:]
def path(level, t, w):
    groups = []
    while True:
        groups.append(t % 1000); t //= 1000
        if t == 0: break
    name = "/".join(("x%03d" if i else "%03d") % g for i, g in reversed(list(enumerate(groups))))
    lv = "entries" if level < 0 else str(level)
    return f"tile/{lv}/{name}" + (f".p/{w}" if w else "")
def served(rel):
    out = subprocess.run([httpraw, port, "/" + rel, "--key", key, "--origin", "enlace/OAS-BROKER"],
                         capture_output=True, text=True).stdout.strip()
    return out == "200"
sizes = set()
for f in glob.glob(sent + "/*.receipt"):
    m = re.search(rb"enlace/OAS-BROKER\n(\d+)\n", open(f, "rb").read())
    if m: sizes.add(int(m.group(1)))
missing = []
for n in sorted(sizes):
    for level in (-1, 0):
        t, w = n // 256, n % 256
        # the partial, or the full tile that may replace it
        if w and not served(path(level, t, w)) and not served(path(level, t, 0)):
            missing.append(path(level, t, w))
print(len(sizes), "sizes;", "missing:", " ".join(missing) if missing else "none")
PY
cat "$NET/partials.txt"
ok "every checkpoint handed out in a receipt has its partial tiles" grep -q "missing: none" "$NET/partials.txt"
# ... and enlace-audit verify checks those older partials too: a forged one fails
cur=$(sed -n 2p "$LOG/checkpoint")
older=$(cd "$LOG" && ls tile/0/000.p 2>/dev/null | sort -n | awk -v c=$((cur % 256)) '$1 < c' | head -1)
ok "an older partial tile is on disk ($older, the log at $cur)" test -n "$older"
cp "$LOG/tile/0/000.p/$older" "$NET/partial.bak"
printf '\xff' | dd of="$LOG/tile/0/000.p/$older" bs=1 seek=5 conv=notrunc 2>/dev/null
$A verify "$LOG" --broker-pub "$NET/broker/key/card" 2>"$NET/forged.err"
is "a forged older partial tile: NOT VALID" $? 1
ok "  ... naming it" grep -q "tile/0/000.p/$older: an older partial tile that does not match" "$NET/forged.err"
cp "$NET/partial.bak" "$LOG/tile/0/000.p/$older"
ok "  ... and valid again once restored" $A verify "$LOG" --broker-pub "$NET/broker/key/card"
finish

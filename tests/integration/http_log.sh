#!/bin/bash
# The audit log over HTTP: served to directory members only (every request
# signed), from the C2SP tlog-tiles paths only, never anything else: no
# traversal spelling, symlink or hard link placed in the log's folder
# reaches a file outside the log. And the broker stops promptly with
# misbehaving HTTP clients still connected.
. "$(dirname "$0")/common.sh"
FETCH_WAIT=2s net_init AR-UIF:FIU BR-PF:POLICE OAS-AUDIT:AUDITOR
K=$BIN/keys/enlace-keys
H=$BIN/tests/httpraw
LOG=$NET/broker/data/log
ORIGIN=enlace/OAS-BROKER
start_broker || finish
for a in AR-UIF BR-PF; do start_agent $a || finish; done
id=$(enl AR-UIF send --wait --to BR-PF --text "for the log") || finish
wait_for 10 "published checkpoint" test -f "$LOG/checkpoint" || finish
secret=$(ls "$NET/broker/key" | grep -m1 -i secret || ls "$NET/broker/key" | grep -m1 -v card)
ok "the broker's key folder holds a private key file ($secret)" test -s "$NET/broker/key/$secret"

get() { # get TARGET [httpraw options]: the status, signed by the auditor
	"$H" "$LOG_PORT" "$1" --key "$NET/OAS-AUDIT/key" --origin "$ORIGIN" "${@:2}" 2>"$NET/h.hdr"
}
body() { # body TARGET [options]: the body, signed by the auditor
	"$H" "$LOG_PORT" "$1" --key "$NET/OAS-AUDIT/key" --origin "$ORIGIN" --body "${@:2}"
}

# What a member may read, with C2SP's types and caching
is "the auditor reads the checkpoint" "$(get /checkpoint)" 200
ok "  ... as text/plain; charset=utf-8" grep -qi "^Content-Type: text/plain; charset=utf-8" "$NET/h.hdr"
ok "  ... not cached" grep -qi "^Cache-Control: no-cache" "$NET/h.hdr"
ok "  ... the published file" wait_for 10 "the same checkpoint" sh -c \
	"'$H' $LOG_PORT /checkpoint --key '$NET/OAS-AUDIT/key' --origin $ORIGIN --body | cmp -s - '$LOG/checkpoint'"
tile=$(cd "$LOG" && find tile/0 -type f | sort | head -n 1)
is "a hash tile ($tile)" "$(get "/$tile")" 200
ok "  ... the tile's bytes" sh -c "'$H' $LOG_PORT /$tile --key '$NET/OAS-AUDIT/key' --origin $ORIGIN --body | cmp -s - '$LOG/$tile'"
case $tile in
*.p/*) ok "  ... a partial tile, cached briefly" grep -qi "^Cache-Control: public, max-age=60" "$NET/h.hdr" ;;
*) ok "  ... a full tile, immutable" grep -qi "^Cache-Control: .*immutable" "$NET/h.hdr" ;;
esac
etile=$(cd "$LOG" && find tile/entries -type f | sort | head -n 1)
is "an entry bundle ($etile)" "$(get "/$etile")" 200
is "HEAD of the checkpoint" "$(get /checkpoint --method HEAD)" 200
is "an agency reads it too" "$("$H" "$LOG_PORT" /checkpoint --key "$NET/BR-PF/key" --origin $ORIGIN 2>/dev/null)" 200
is "the broker's operator too (its key)" "$("$H" "$LOG_PORT" /checkpoint --key "$NET/broker/key" --origin $ORIGIN 2>/dev/null)" 200
is "POST is not a read" "$(get /checkpoint --method POST)" 405

# Who may not: refused alike whatever the path, with nothing in the answer
$K agency new --id XX-NOBODY --kind FIU --no-passphrase "$NET/nobody" >/dev/null
for t in /checkpoint /no-such-file /../../key/$secret "/$tile"; do
	is "unsigned $t" "$("$H" "$LOG_PORT" "$t" 2>"$NET/h.hdr")" 401
	is "  ... with nothing in it" "$("$H" "$LOG_PORT" "$t" --body | wc -c)" 0
	is "  ... signed by a key outside the directory" \
		"$("$H" "$LOG_PORT" "$t" --key "$NET/nobody" --origin $ORIGIN 2>/dev/null)" 401
done
is "a signature ten minutes old" "$(get /checkpoint --skew -600)" 401
is "a signature ten minutes ahead" "$(get /checkpoint --skew 600)" 401
is "a signature for another log" "$("$H" "$LOG_PORT" /checkpoint --key "$NET/OAS-AUDIT/key" --origin enlace/XX-OTHER 2>/dev/null)" 401
cp_auth=$("$H" "$LOG_PORT" /checkpoint --key "$NET/OAS-AUDIT/key" --origin $ORIGIN --print-auth)
is "a signature made for /checkpoint, on /checkpoint" "$("$H" "$LOG_PORT" /checkpoint --auth "$cp_auth" 2>/dev/null)" 200
is "  ... replayed on another path" "$("$H" "$LOG_PORT" "/$tile" --auth "$cp_auth" 2>/dev/null)" 401
is "  ... replayed as another method" "$("$H" "$LOG_PORT" /checkpoint --method HEAD --auth "$cp_auth" 2>/dev/null)" 401
is "malformed Authorization" "$("$H" "$LOG_PORT" /checkpoint --auth "Enlace-Sig id=OAS-AUDIT,v=1,t=1,sig=AAAA" 2>/dev/null)" 401
is "another scheme" "$("$H" "$LOG_PORT" /checkpoint --auth "Basic YWRtaW46YWRtaW4=" 2>/dev/null)" 401

# Traversal, every spelling: 404 (or a refusal), never a byte of the key
printf 'OUTSIDE-SECRET\n' > "$NET/outside"
mkdir -p "$NET/outdir" "$LOG/tile/6"
printf 'OUTSIDE-SECRET\n' > "$NET/outdir/000"
ln -s "$NET/broker/key/$secret" "$LOG/tile/0/999"
ln -s "$NET/outdir" "$LOG/tile/5"
ln "$NET/outdir/000" "$LOG/tile/6/000"
ln -s "$NET/outside" "$LOG/checkpoint.link"
for t in \
	"/../../key/$secret" "/../key/$secret" "/tile/../../../key/$secret" \
	"/%2e%2e/%2e%2e/key/$secret" "/%2E%2E%2F%2E%2E%2Fkey%2F$secret" "/..%2f..%2fkey%2f$secret" \
	"/%252e%252e/%252e%252e/key/$secret" "/....//....//key/$secret" "/.%2e/.%2e/key/$secret" \
	'/..\..\key\'"$secret" '/..%5c..%5ckey%5c'"$secret" \
	"/tile/0/000\\x00/../../../key/$secret" "/checkpoint%00/../../key/$secret" \
	"/%c0%ae%c0%ae/%c0%ae%c0%ae/key/$secret" "/%e0%80%ae%e0%80%ae/key/$secret" \
	"http://127.0.0.1/../../key/$secret" "//../../key/$secret" \
	/journal /store.sqlite /../store.sqlite /../../broker.conf /tile/0/999 /tile/5/000 /tile/6/000 \
	/checkpoint.link /checkpoint/ /./checkpoint //checkpoint "/checkpoint?x=1" /CHECKPOINT \
	"/tile/00/${tile#tile/0/}" "/$tile/" "/tile/0/0000" "/tile/9/000" "/tile/0/x/000" \
	"/tile/0/000.p/0" "/tile/0/000.p/256" "/tile/0/000.p/01" "/tile/entries/-1" \
	/tile /tile/ / "" ; do
	st=$(get "$t")
	# a NUL in the request line: nng closes the connection unanswered
	[ -z "$st" ] && [ "${t#*\\x00}" != "$t" ] && st=closed
	ok "'$t' is not served (status $st)" test "$st" = 404 -o "$st" = 400 -o "$st" = closed
	ok "  ... not one byte of it" sh -c "! '$H' $LOG_PORT '$t' --key '$NET/OAS-AUDIT/key' --origin $ORIGIN --body 2>/dev/null | grep -qa -e OUTSIDE-SECRET -e PRIVATE -e '\[broker\]' -e 'SQLite format'"
done
rm -f "$LOG/tile/0/999" "$LOG/tile/5" "$LOG/checkpoint.link"
rm -rf "$LOG/tile/6"

# enlace-audit reads over HTTP with a member's key, and says why not without
A=$BIN/client/enlace-audit
ok "enlace-audit verify over HTTP with the auditor's key" \
	$A verify "http://127.0.0.1:$LOG_PORT" --broker-pub "$NET/broker/key/card" --key "$NET/OAS-AUDIT/key"
$A verify "http://127.0.0.1:$LOG_PORT" --broker-pub "$NET/broker/key/card" 2>"$NET/nokey.err"
is "  ... without --key: exit 1" $? 1
ok "  ... saying --key is needed" grep -q "needs --key DIR" "$NET/nokey.err"
$A verify "http://127.0.0.1:$LOG_PORT" --broker-pub "$NET/broker/key/card" --key "$NET/nobody" 2>"$NET/nobody.err"
is "  ... with a key outside the directory: exit 1" $? 1
ok "  ... saying the log refused it" grep -q "refused the signature of --key" "$NET/nobody.err"

# A revoked key reads no more, once the directory that revokes it is in force
# (BR-PF's agent stopped first: this is about the log, not its sessions)
stop_agent BR-PF TERM
$K directory revoke --authority "$NET/authority" --in "$NET/directory" --id BR-PF \
	--reason "key compromised" --out "$NET/directory.2" >/dev/null || finish
mv "$NET/directory.2" "$NET/directory"
kill -HUP "$(cat "$NET/broker/pid")"
ok "serial 2 in force" wait_for 10 "serial 2" grep -q "directory serial 2 in force" "$NET/broker/log"
is "a revoked key is refused" "$("$H" "$LOG_PORT" /checkpoint --key "$NET/BR-PF/key" --origin $ORIGIN 2>/dev/null)" 401
is "  ... the auditor still reads" "$(get /checkpoint)" 200

# Misbehaving clients, then SIGTERM: the broker exits within its deadline
python3 - "$LOG_PORT" "$NET/held" <<'PY' &
import socket, sys, time
port = int(sys.argv[1])
socks = []
for i in range(60):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    if i % 3 == 0:
        s.send(b"GET /checkpoint HTTP/1.1\r\nHost: x\r\n")   # never ends its headers
    elif i % 3 == 1:
        s.send(b"GET /chec")                                # half a request line
    else:
        for _ in range(50):                                 # pipelined, never read
            s.send(b"GET /checkpoint HTTP/1.1\r\nHost: x\r\n\r\n")
    socks.append(s)
open(sys.argv[2], "w").write("held\n")
time.sleep(120)
PY
hold=$!
ok "sixty misbehaving HTTP clients connected" wait_for 20 "the clients" test -f "$NET/held"
bpid=$(cat "$NET/broker/pid")
t0=$(date +%s%N)
kill -TERM "$bpid"
ok "the broker exits within 15 s of SIGTERM" wait_for 15 "the broker to exit" sh -c "! kill -0 $bpid"
is "  ... and says it stopped" "$(grep -c "stopping (signal 15)" "$NET/broker/log")" 1
echo "broker stopped in $((($(date +%s%N) - t0) / 1000000)) ms with the clients held"
rm -f "$NET/broker/pid"
kill "$hold" 2>/dev/null
wait "$hold" 2>/dev/null
finish

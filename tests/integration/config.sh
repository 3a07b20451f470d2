#!/bin/bash
# Configuration files: --check-config accepts a good file and names the
# file, line and key of a bad one; --help everywhere. One broker per data
# folder and one agent per spool.
. "$(dirname "$0")/common.sh"
FETCH_WAIT=2s net_init AR-UIF:FIU BR-PF:POLICE
B=$BIN/broker/enlace-broker A=$BIN/client/enlace-agent
out() { "$@" > "$NET/out.txt" 2>&1; echo $?; }
is "broker --help" "$(out $B --help)" 0
is "agent --help" "$(out $A --help)" 0
is "broker without --config" "$(out $B)" 2
is "agent with --config but no file" "$(out $A --config)" 2
ok "  ... says so" grep -q -- "--config needs a file" "$NET/out.txt"
is "good broker config" "$(out $B --config "$NET/broker/broker.conf" --check-config)" 0
ok "  ... says so" grep -q "valid; broker OAS-BROKER" "$NET/out.txt"
is "good agent config" "$(out $A --config "$NET/AR-UIF/agent.conf" --check-config)" 0
cp "$NET/broker/broker.conf" "$NET/bad.conf"
echo "colour = blue" >> "$NET/bad.conf"
is "unknown key" "$(out $B --config "$NET/bad.conf" --check-config)" 1
ok "  ... names file, line and key" grep -q "bad.conf:$(wc -l < "$NET/bad.conf"): unknown key 'colour'" "$NET/out.txt"
sed 's/^\[broker\]$/[broker]\nmax_payload = lots/' "$NET/broker/broker.conf" > "$NET/bad2.conf"
is "bad value" "$(out $B --config "$NET/bad2.conf" --check-config)" 1
ok "  ... says what is wrong" grep -q "bad2.conf:2: key 'max_payload': 'lots' is not a size" "$NET/out.txt"
grep -v "^directory" "$NET/AR-UIF/agent.conf" > "$NET/bad3.conf"
is "missing key" "$(out $A --config "$NET/bad3.conf" --check-config)" 1
ok "  ... names it" grep -q "key 'directory' in section \[agent\] is required" "$NET/out.txt"
refused() { # refused WHAT PROGRAM CONFIG SED-SCRIPT PATTERN: a changed CONFIG is refused, saying so
	sed "$4" "$3" > "$NET/changed.conf"
	is "$1" "$(out "$2" --config "$NET/changed.conf" --check-config)" 1
	ok "  ... says so" grep -q -- "$5" "$NET/out.txt"
}
refused "a misspelt section: its first key is named, not a later one" $B "$NET/broker/broker.conf" \
	's/^\[broker\]$/[brokr]/' "changed.conf:2: unknown key 'listen' in section \[brokr\]"
refused "a line that is not a setting, then a bad key: the first is named" $B "$NET/broker/broker.conf" \
	's/^\[broker\]$/[broker]\nthis is no setting\ncolour = blue/' "changed.conf:2: not a 'key = value' line"
refused "a listen address of another scheme" $B "$NET/broker/broker.conf" \
	's#^listen = .*#listen = http://127.0.0.1:80#' \
	"key 'listen': 'http://127.0.0.1:80' is not an address SCHEME://HOST:PORT"
refused "a broker address without a port" $A "$NET/AR-UIF/agent.conf" \
	's#^broker = .*#broker = tcp://127.0.0.1#' "key 'broker': 'tcp://127.0.0.1' is not an address"
refused "a broker_id that is no broker" $A "$NET/AR-UIF/agent.conf" \
	's#^broker_id = .*#broker_id = BR-PF#' "broker_id BR-PF: the directory .* has no BROKER card of that id"
refused "a control socket in no folder" $A "$NET/AR-UIF/agent.conf" \
	"s#^control = .*#control = $NET/nowhere/agent.sock#" "its folder $NET/nowhere does not exist"
is "missing file" "$(out $B --config "$NET/nothing.conf" --check-config)" 1
ok "  ... says so" grep -q "nothing.conf: cannot open" "$NET/out.txt"
# A broker whose directory lacks its card refuses to start.
$BIN/keys/enlace-keys directory build --authority "$NET/authority" --serial 2 --expires 9d \
	--out "$NET/nobroker" "$NET/AR-UIF/key/card" >/dev/null
sed "s#^directory = .*#directory = $NET/nobroker#" "$NET/broker/broker.conf" > "$NET/bad4.conf"
is "broker not in its directory" "$(out $B --config "$NET/bad4.conf" --check-config)" 1
ok "  ... says so" grep -q "no BROKER card for OAS-BROKER" "$NET/out.txt"
# A store made by an earlier build (deliveries keyed by message id) is
# refused by name, and left as it was.
mkdir -p "$NET/broker/data"
sqlite3 "$NET/broker/data/store.sqlite" "CREATE TABLE messages (id BLOB PRIMARY KEY, hash BLOB,
	sender TEXT, received_at INTEGER, envelope BLOB, log_index INTEGER, tlp INTEGER,
	onward INTEGER, evidential INTEGER) WITHOUT ROWID; CREATE TABLE deliveries (seq INTEGER
	PRIMARY KEY AUTOINCREMENT, message_id BLOB, recipient TEXT, state INTEGER);"
before=$(sqlite3 "$NET/broker/data/store.sqlite" .schema | sha256sum)
is "a store of an earlier layout" "$(out $B --config "$NET/broker/broker.conf")" 1
ok "  ... says so" grep -q "was written by an earlier build of enlace-broker" "$NET/out.txt"
is "  ... and is left as it was" "$(sqlite3 "$NET/broker/data/store.sqlite" .schema | sha256sum)" "$before"
rm -rf "$NET/broker/data"

# A directory that expires in two days: the broker and each agent say so
# in their logs, and `enlace status` shows when.
$BIN/keys/enlace-keys directory build --authority "$NET/authority" --serial 2 --expires 2d \
	--out "$NET/directory" "$NET/broker/key/card" "$NET"/*-*/key/card >/dev/null || finish
for a in AR-UIF BR-PF; do cp "$NET/directory" "$NET/$a/directory"; done
# A second broker on the data folder of a running one (another port) is
# refused before it touches anything; so is a second agent on a spool,
# and an agent on a control socket another agent answers on.
start_broker || finish
start_agent AR-UIF || finish
start_agent BR-PF || finish
ok "the broker says its directory expires soon" wait_for 20 "the warning" grep -q \
	"directory serial 2 expires at .*, in 4[78] h: put the authority's newer one in force" \
	"$NET/broker/log"
ok "  ... and so does the agent" wait_for 20 "the warning" grep -q \
	"directory serial 2 expires at .*, in 4[78] h; the broker has no newer one yet" "$NET/AR-UIF/log"
ok "  ... and enlace status" sh -c "ENLACE_SOCKET=$NET/AR-UIF/agent.sock $BIN/client/enlace status | \
	grep -q '^directory  serial 2, expires 20'"
ok "  ... with --json" sh -c "ENLACE_SOCKET=$NET/AR-UIF/agent.sock $BIN/client/enlace status --json | \
	grep -q '\"directory_expired\":false'"
sed -e "s#^listen = .*#listen = tcp://127.0.0.1:$(free_port)#" -e "/^log_listen/d" \
	"$NET/broker/broker.conf" > "$NET/second.conf"
is "a second broker on the same data folder" "$(out timeout 20 $B --config "$NET/second.conf")" 1
ok "  ... says which process has it" grep -q \
	"in use by another enlace-broker (pid $(cat "$NET/broker/pid")); one broker per data folder" \
	"$NET/out.txt"
sed -e "s#^control = .*#control = $NET/second.sock#" "$NET/AR-UIF/agent.conf" > "$NET/second-agent.conf"
is "a second agent on the same spool" "$(out timeout 20 $A --config "$NET/second-agent.conf")" 1
ok "  ... says which process has it" grep -q \
	"in use by another enlace-agent (pid $(cat "$NET/AR-UIF/pid")); one agent per spool" "$NET/out.txt"
# another agency's agent given AR-UIF's control socket by mistake
mkdir -p "$NET/BR-PF2"
sed -e "s#^control = .*#control = $NET/AR-UIF/agent.sock#" -e "s#/BR-PF/spool#/BR-PF2/spool#" \
	"$NET/BR-PF/agent.conf" > "$NET/third-agent.conf"
is "an agent on another agent's control socket" "$(out timeout 20 $A --config "$NET/third-agent.conf")" 1
ok "  ... says so" grep -q "agent.sock: another agent answers on it" "$NET/out.txt"
ok "  ... and the socket still answers as AR-UIF" sh -c "ENLACE_SOCKET=$NET/AR-UIF/agent.sock \
	$BIN/client/enlace status --json | grep -q '\"agency\":\"AR-UIF\"'"
# clients that connect and leave at once, or send what is not a request,
# leave the agent answering the next one
python3 -c "
import socket, sys
for frame in [b''] * 20 + [b'\xff\xff\xff\xff', b'\x00\x00\x00\x03abc', b'\x00\x00']:
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(frame); s.close()
" "$NET/AR-UIF/agent.sock"
ok "probes and garbage on the control socket stop nothing" sh -c "ENLACE_SOCKET=$NET/AR-UIF/agent.sock \
	$BIN/client/enlace status --json | grep -q '\"agency\":\"AR-UIF\"'"
id=$(enl AR-UIF send --to BR-PF --text "after both were refused")
ok "the first broker and agent work on" wait_for 30 "the inbox" test -e "$NET/BR-PF/spool/inbox/$id.env"
ok "  ... and the broker's log is intact" grep -q "verified" "$NET/broker/log"
stop_broker TERM
ok "the audit log verifies" "$BIN/client/enlace-audit" verify "$NET/broker/data/log" \
	--broker-pub "$NET/broker/key/card"
finish

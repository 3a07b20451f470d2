#!/bin/bash
# One slow or hostile peer costs only itself. Beside a working agency
# that keeps sending: a connection that floods frames before its
# handshake and never reads, an authenticated session that floods
# requests and never reads, connections that never say hello, a first
# frame too big for a handshake, more handshakes from one address than
# allowed, and one agency opening more sessions than its share. Each is
# closed or refused; the working agency's receipts keep coming at once.
. "$(dirname "$0")/common.sh"
FETCH_WAIT=2s net_init AR-UIF:FIU BR-PF:POLICE MX-UIF:FIU
cat >>"$NET/broker/broker.conf" <<CONF
max_sessions_per_agency = 4
max_handshakes_per_address = 16
handshake_timeout = 1s
CONF
R="$BIN/tests/rawclient"
URL=tcp://127.0.0.1:$BROKER_PORT
# broker_released PORT...: the broker holds no open connection from any of
# these client ports (a peer that never reads cannot see the broker close:
# the end of the stream waits behind the answers it does not take)
broker_released() {
	python3 - "$BROKER_PORT" "$@" <<'PY'
import sys
lport, ports = int(sys.argv[1]), {int(p) for p in sys.argv[2:]}
for name in ("/proc/net/tcp", "/proc/net/tcp6"):
    for line in open(name).readlines()[1:]:
        f = line.split()
        local, remote, state = f[1], f[2], f[3]
        if state == "01" and int(local.split(":")[1], 16) == lport and \
                int(remote.split(":")[1], 16) in ports:
            sys.exit(1)
sys.exit(0)
PY
}
start_broker || finish
for a in AR-UIF BR-PF; do start_agent $a || finish; done

# send_ms: one message from AR-UIF to BR-PF, receipted; prints its time in ms
send_ms() {
	local t0 t1
	t0=$(date +%s%N)
	enl AR-UIF send --wait --to BR-PF --text "while attacked" >/dev/null || { echo fail; return; }
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000))
}
receipted_fast() { # receipted_fast WHAT: five sends, each receipted within 3 s
	local i ms worst=0
	for i in 1 2 3 4 5; do
		ms=$(send_ms)
		[ "$ms" = fail ] && { echo "$1: a send failed"; return 1; }
		[ "$ms" -gt "$worst" ] && worst=$ms
	done
	echo "$1: slowest of five send --wait: $worst ms"
	[ "$worst" -lt 3000 ]
}
ok "before any attack, receipts come at once" receipted_fast "quiet"

# 1. Frames before a handshake, never read: the broker closes the connection
python3 - "$BROKER_PORT" >"$NET/preauth.out" 2>&1 <<'PY' &
import socket, struct, sys, time
port = int(sys.argv[1])
socks = []
for c in range(3):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"\x00SP\x00\x00\x30\x00\x00")
    s.recv(8)
    s.setblocking(False)
    end = time.time() + 3
    i = 0
    while time.time() < end:
        body = struct.pack(">I", 0x80000000 | (i + 1)) + b"\x08\x01"
        try:
            s.send(struct.pack(">Q", len(body)) + body)
            i += 1
        except BlockingIOError:
            time.sleep(0.01)
        except (ConnectionResetError, BrokenPipeError):
            break
    socks.append(s)
print("ports", " ".join(str(s.getsockname()[1]) for s in socks), flush=True)
time.sleep(30)
PY
flood_pre=$!
# 2. An authenticated session that floods requests and never reads
"$R" flood "$URL" "$NET/MX-UIF/key" "$NET/directory" 200000 >"$NET/flood.out" 2>&1 &
flood_auth=$!
ok "while both flood, receipts still come at once" receipted_fast "flooded"
ok "the session's flood is sent" wait_for 60 "the flood" grep -q "without reading an answer" "$NET/flood.out"
cat "$NET/flood.out"
fport=$(grep -o 'from port [0-9]*' "$NET/flood.out" | grep -o '[0-9]*$')
ok "the flooding session is closed by the broker" wait_for 30 "the close" broker_released $fport
ok "  ... saying why" grep -q "closed the connection of MX-UIF: 8 requests unanswered" "$NET/broker/log"
kill "$flood_auth" 2>/dev/null
ok "the unauthenticated floods are sent" wait_for 30 "the floods" grep -q "^ports" "$NET/preauth.out"
cat "$NET/preauth.out"
pports=$(grep '^ports' "$NET/preauth.out" | cut -d' ' -f2-)
ok "  ... and each is closed by the broker" wait_for 30 "the close" broker_released $pports
kill "$flood_pre" 2>/dev/null
wait "$flood_pre" "$flood_auth" 2>/dev/null

# 3. Connections that never say hello are closed at the handshake deadline
python3 - "$BROKER_PORT" >"$NET/idle.out" 2>&1 <<'PY'
import socket, sys, time
port = int(sys.argv[1])
socks = []
for i in range(10):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"\x00SP\x00\x00\x30\x00\x00")
    s.recv(8)
    socks.append(s)
t0 = time.time()
closed = 0
for s in socks:
    s.settimeout(max(0.1, t0 + 8 - time.time()))
    try:
        if s.recv(1) == b"":
            closed += 1
    except ConnectionResetError:
        closed += 1
    except socket.timeout:
        pass
print("idle connections closed by the broker:", closed, "of 10 in", round(time.time() - t0, 1), "s")
sys.exit(0 if closed == 10 else 1)
PY
is "ten idle connections closed at the 1 s deadline" "$?" 0
cat "$NET/idle.out"

# 4. A first frame bigger than any handshake: closed at once
python3 - "$BROKER_PORT" >"$NET/big.out" 2>&1 <<'PY'
import socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"\x00SP\x00\x00\x30\x00\x00")
s.recv(8)
body = struct.pack(">I", 0x80000001) + b"\x00" * (1 << 20)
s.sendall(struct.pack(">Q", len(body)) + body)
s.settimeout(5)
try:
    gone = s.recv(1) == b""
except ConnectionResetError:
    gone = True
except socket.timeout:
    gone = False
print("a 1 MiB first frame: connection closed" if gone else "a 1 MiB first frame: still open")
sys.exit(0 if gone else 1)
PY
is "a 1 MiB first frame closes the connection" "$?" 0
ok "  ... saying why" grep -q "a first frame of 1048576 bytes, over the 16384 a handshake may have" "$NET/broker/log"

# 5. More connections without a session from one address than allowed:
# those past the cap are closed at once, not at the 1 s deadline
python3 - "$BROKER_PORT" >"$NET/many.out" 2>&1 <<'PY'
import socket, sys, time
port = int(sys.argv[1])
socks = []
for i in range(24):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"\x00SP\x00\x00\x30\x00\x00")
    socks.append(s)
t0 = time.time()
refused = 0
for s in socks:
    s.settimeout(max(0.05, t0 + 0.5 - time.time()))
    try:
        got = s.recv(8)
        if len(got) == 8:
            got = s.recv(1)
        if got == b"":
            refused += 1
    except ConnectionResetError:
        refused += 1
    except socket.timeout:
        pass
print("of 24 connections at once from one address,", refused, "were closed at once")
sys.exit(0 if refused >= 8 else 1)
PY
is "connections past max_handshakes_per_address are refused" "$?" 0
cat "$NET/many.out"
ok "  ... saying why" grep -q "refused a connection from 127.0.0.1: 16 connections without a session already" "$NET/broker/log"
ok "after the connection attacks, receipts come at once" receipted_fast "after"

# 6. One agency cannot take every session: MX-UIF gets its 4, no more
# (once the refused connections above are past their deadline)
ok "handshakes from this address are taken again" wait_for 15 "a handshake" \
	"$R" hello "$URL" "$NET/MX-UIF/key" "$NET/directory"
exec 3> >("$R" sessions "$URL" "$NET/MX-UIF/key" "$NET/directory" 8 >"$NET/sessions.out" 2>&1)
ok "MX-UIF's sessions are opened" wait_for 20 "the sessions" grep -q "sessions opened" "$NET/sessions.out"
opened=$(grep -o '^[0-9]*' "$NET/sessions.out")
# (4 less any session of MX-UIF the broker still counts from the check above)
ok "  ... at most four of eight ($opened)" test "$opened" -ge 1 -a "$opened" -le 4
ok "  ... the rest refused, saying why" grep -q "refused a session from MX-UIF: max_sessions_per_agency reached" "$NET/broker/log"
ok "with MX-UIF at its cap, AR-UIF's receipts come at once" receipted_fast "capped"
exec 3>&-
ok "the broker kept running" kill -0 "$(cat "$NET/broker/pid")"
finish

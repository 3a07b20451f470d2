#!/bin/bash
# A guided tour of enlace on loopback, in ./demo: a directory authority,
# a broker and three agencies (AR-UIF, BR-PF, US-FINCEN). AR-UIF sends a
# case message with an attachment to BR-PF and US-FINCEN; it arrives at
# both, verified; the sender sees the signed delivery receipts.
#
#   bash examples/demo.sh           run the tour, then stop everything
#   bash examples/demo.sh --keep    leave the network running; see demo/network.env
#   bash examples/demo.sh --stop    stop a network left running
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
NET=$ROOT/demo
BIN=$ROOT/build
keep=0
case "${1:-}" in
--keep) keep=1 ;;
--stop)
	if [ -f "$NET/network.env" ]; then
		. "$NET/network.env"
		for p in $ENLACE_PIDS; do kill "$p" 2>/dev/null || true; done
		for p in $ENLACE_PIDS; do
			for _ in $(seq 1 400); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
		done
		echo "stopped the demo network (pids $ENLACE_PIDS)"
	else
		echo "no demo network is running (no demo/network.env)"
	fi
	exit 0 ;;
"") ;;
-h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
*) echo "usage: bash examples/demo.sh [--keep | --stop]" >&2; exit 2 ;;
esac

bash .ci/install-deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
[ -f "$NET/network.env" ] && bash "$0" --stop >/dev/null
rm -rf "$NET"
. examples/lib/network.sh
trap '[ $keep = 1 ] || stop_all >/dev/null 2>&1' EXIT

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold= plain=; fi
n=0
step() { n=$((n + 1)); printf '\n%s%d. %s%s\n' "$bold" "$n" "$*" "$plain"; }
show() { printf '$ %s\n' "$*"; }
cont() { printf '  %s\n' "$*"; }	# the next line of a command shown
enlace_as() { # enlace_as ID ARGS...: show and run the analyst's command
	local id=$1
	shift
	show "enlace $*    # at $id"
	enl "$id" "$@"
}

step "Identities: the directory authority signs a directory of the broker's and the agencies' cards"
cat > "$NET.policy" <<'POLICY'
# The demo's routing policy (docs/POLICY.md; a fuller one: examples/policy.conf)
rule fiu-network: allow
    from kind FIU
    to kind FIU
    tlp up to AMBER+STRICT
rule fiu-to-police: allow
    from kind FIU
    to kind POLICE
    type CASE_MESSAGE, REQUEST, REPLY
    tlp up to AMBER
rule at-home: allow
    from any
    to same-country
rule everything-else: deny
    from any
    to any
POLICY
FETCH_WAIT=5s LOG_POLL=500ms POLICY="$NET.policy" net_init AR-UIF:FIU BR-PF:POLICE US-FINCEN:FIU BR-COAF:FIU OAS-AUDIT:AUDITOR
rm -f "$NET.policy"
show "enlace-keys directory show demo/directory"
$BIN/keys/enlace-keys directory show "$NET/directory" | sed -n '1,20p'

step "The broker starts (store: SQLite in WAL mode, each commit synced before it is answered) with its routing policy"
start_broker
tail -n 1 "$NET/broker/log"
show "enlace-broker policy explain --config demo/broker/broker.conf --from AR-UIF --to BR-PF --tlp amber"
$BIN/broker/enlace-broker policy explain --config "$NET/broker/broker.conf" --from AR-UIF --to BR-PF --tlp amber

step "Each agency's daemon starts and opens its sessions to the broker"
for a in AR-UIF BR-PF US-FINCEN BR-COAF; do start_agent $a; done
wait_for 10 "AR-UIF connected" sh -c "ENLACE_SOCKET=$NET/AR-UIF/agent.sock $BIN/client/enlace status | grep -q ' connected'"
enlace_as AR-UIF status

step "AR-UIF sends a case message with an attachment to BR-PF and US-FINCEN"
printf 'date,account,amount\n2026-09-01,AR-0042,9900\n2026-09-02,AR-0042,9800\n2026-09-03,AR-0042,9950\n' > "$NET/transfers.csv"
show "enlace send --to BR-PF --to US-FINCEN --case CASE-2026-0042 --tlp amber --onward consent \\"
cont "    --subject 'Structured deposits, account AR-0042' --text '...' --attach transfers.csv --wait"
enl AR-UIF send --to BR-PF --to US-FINCEN --case CASE-2026-0042 --tlp amber --onward consent \
	--reliability B --assessment 2 --subject "Structured deposits, account AR-0042" \
	--text "Three deposits just below the reporting threshold on consecutive days." \
	--attach "$NET/transfers.csv" --wait --json > "$NET/sent.json"
id=$(grep -o '"message_id":"[0-9a-f]*"' "$NET/sent.json" | cut -d'"' -f4)
echo "message $id: signed and encrypted at AR-UIF, stored by the broker, receipt in hand"

step "It arrives at BR-PF and at US-FINCEN, verified against the directory"
for r in BR-PF US-FINCEN; do
	wait_for 20 "$r" sh -c "ENLACE_SOCKET=$NET/$r/agent.sock $BIN/client/enlace inbox | grep -q $id"
done
enlace_as BR-PF inbox
enlace_as US-FINCEN read "$id" --save "$NET/US-FINCEN/saved"
cmp "$NET/transfers.csv" "$NET/US-FINCEN/saved/transfers.csv" && echo "(attachment saved, identical)"

step "AR-UIF sees the signed delivery receipts: fetched and acknowledged by each recipient"
wait_for 20 "acks" sh -c "[ \$(ENLACE_SOCKET=$NET/AR-UIF/agent.sock $BIN/client/enlace receipts --json $id | grep -o acknowledged | wc -l) = 2 ]"
enlace_as AR-UIF receipts "$id"

step "BR-PF would share it: TLP:AMBER keeps it in Brazil, and its onward sharing is CONSENT"
show "enlace forward $id --to US-FINCEN    # at BR-PF"
enl BR-PF forward "$id" --to US-FINCEN || true
show "enlace forward $id --to BR-COAF --note 'for the financial analysis' --wait    # at BR-PF"
enl BR-PF forward "$id" --to BR-COAF --note "for the financial analysis" --wait --json > "$NET/fwd.json" || true
fwd=$(grep -o '"message_id":"[0-9a-f]*"' "$NET/fwd.json" | cut -d'"' -f4)
enlace_as BR-PF receipts "$fwd" | tail -n 1

step "The broker asks the originator; AR-UIF sees who would forward what to whom, and grants it"
wait_for 20 "the consent request" sh -c "ENLACE_SOCKET=$NET/AR-UIF/agent.sock $BIN/client/enlace consent list | grep -q PENDING"
enlace_as AR-UIF consent list
req=$(enl AR-UIF consent list --json | grep -o '"request_id":"[0-9a-f]*"' | head -1 | cut -d'"' -f4)
enlace_as AR-UIF consent grant "$req" --note "agreed for case CASE-2026-0042" | tail -n 1

step "BR-COAF receives the forward and checks AR-UIF's own signature on the original"
wait_for 20 "BR-COAF" sh -c "ls $NET/BR-COAF/spool/inbox | grep -q $fwd"
enlace_as BR-COAF read "$fwd" | sed -n '/CHAIN OF CUSTODY/,$p'

step "The broker relayed it without ever holding the plaintext"
if grep -r -a -q "Three deposits" "$NET/broker"; then
	echo "PLAINTEXT FOUND AT THE BROKER: this must not happen"; exit 1
fi
echo "(no trace of the body in demo/broker, the broker's keys, store and log)"

step "Every agency holds the broker's newest log checkpoint, checks that it extends the last one, and cosigns it"
KEYS=(--directory "$NET/directory" --authority-pub "$NET/authority/authority.pub")
READER=(--key "$NET/OAS-AUDIT/key")
wait_for 20 "the log" sh -c "$BIN/client/enlace-audit trail $id --log $NET/broker/data/log ${KEYS[*]} --quiet | grep -q 'ACKED .*by BR-COAF'"
size=$(sed -n 2p "$NET/broker/data/log/checkpoint")
for a in AR-UIF BR-PF US-FINCEN BR-COAF; do wait_for 20 "$a to cosign" cosigned $a "$size"; done
show "cat demo/broker/data/log/checkpoint    # served at http://127.0.0.1:$LOG_PORT/checkpoint"
cat "$NET/broker/data/log/checkpoint"

step "An auditor (a directory member: the log is not public) verifies the whole log over HTTP"
show "enlace-audit verify http://127.0.0.1:$LOG_PORT --broker-pub demo/broker/key/card --key demo/OAS-AUDIT/key"
$BIN/client/enlace-audit verify "http://127.0.0.1:$LOG_PORT" --broker-pub "$NET/broker/key/card" \
	--key "$NET/OAS-AUDIT/key"

step "The message's trail: sent, queued, fetched, acknowledged, forwarded with consent, to the third party"
show "enlace-audit trail $id --log http://127.0.0.1:$LOG_PORT --directory demo/directory \\"
cont "    --authority-pub demo/authority/authority.pub --key demo/OAS-AUDIT/key"
$BIN/client/enlace-audit trail "$id" --log "http://127.0.0.1:$LOG_PORT" "${KEYS[@]}" "${READER[@]}"

step "Evidence for a court: one file, checked offline with the authority's public key alone"
show "enlace-audit prove $id --log http://127.0.0.1:$LOG_PORT --directory demo/directory \\"
cont "    --authority-pub demo/authority/authority.pub --key demo/OAS-AUDIT/key --out demo/evidence-$id.bundle"
$BIN/client/enlace-audit prove "$id" --log "http://127.0.0.1:$LOG_PORT" "${KEYS[@]}" "${READER[@]}" \
	--out "$NET/evidence-$id.bundle"
show "enlace-audit check-bundle demo/evidence-$id.bundle --authority-pub demo/authority/authority.pub"
$BIN/client/enlace-audit check-bundle "$NET/evidence-$id.bundle" \
	--authority-pub "$NET/authority/authority.pub" | tail -n 1

if [ $keep = 1 ]; then
	pids="$(cat "$NET/broker/pid") $(cat "$NET"/*/pid | grep -v "^$(cat "$NET/broker/pid")$" | tr '\n' ' ')"
	{
		echo "# The demo network, left running by examples/demo.sh --keep."
		echo "ENLACE_BROKER_URL=tcp://127.0.0.1:$BROKER_PORT"
		echo "ENLACE_BROKER_DATA=$NET/broker/data"
		for a in AR-UIF BR-PF US-FINCEN BR-COAF; do
			v=${a//-/_}
			echo "ENLACE_${v}_CONFIG=$NET/$a/agent.conf"
			echo "ENLACE_${v}_SOCKET=$NET/$a/agent.sock"
		done
		echo "ENLACE_PIDS=\"$pids\""
	} > "$NET/network.env"
	step "The network keeps running. Try, for example:"
	echo "  . demo/network.env"
	echo "  ENLACE_SOCKET=\$ENLACE_BR_PF_SOCKET build/client/enlace inbox"
	echo "  ENLACE_SOCKET=\$ENLACE_AR_UIF_SOCKET build/client/enlace send --to US-FINCEN --text hello --wait"
	echo "and stop it with: bash examples/demo.sh --stop"
else
	stop_all >/dev/null 2>&1
	printf '\nDone; everything the tour started is stopped. Files are in ./demo.\n'
fi

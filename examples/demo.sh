#!/bin/bash
# A guided tour of enlace's foundation, in ./demo: a directory authority,
# three agencies and a broker get their keys; the authority signs the
# directory; AR-UIF seals a case message with an attachment for BR-PF and
# US-FINCEN, who open and verify it; a changed byte, a rotated key and a
# revoked key show what the envelope and the directory guarantee.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install-deps.sh
if [ ! -f build/build.ninja ]; then
	meson setup build >/dev/null
fi
ninja -C build >/dev/null

K=$PWD/build/keys/enlace-keys
E=$PWD/build/client/enlace
rm -rf demo
mkdir demo
cd demo

n=0
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold= plain=; fi
step() { n=$((n + 1)); printf '\n%s%d. %s%s\n' "$bold" "$n" "$*" "$plain"; }
run() { printf '$ %s\n' "$*" | sed "s#$K#enlace-keys#; s#$E#enlace#"; "$@"; }

step "The directory authority creates its signing key; every broker and agent pins authority.pub"
run $K authority init --no-passphrase authority

step "Three agencies and the broker create their identity and encryption keys and signed cards"
run $K agency new --id AR-UIF --kind FIU --name "Unidad de Información Financiera" --no-passphrase AR-UIF
run $K agency new --id BR-PF --kind POLICE --name "Polícia Federal" --no-passphrase BR-PF
printf 'a passphrase typed at a terminal in real use\n' > US-FINCEN.pass
run $K agency new --id US-FINCEN --kind FIU --name "Financial Crimes Enforcement Network" \
	--passphrase-file US-FINCEN.pass US-FINCEN
run $K broker new --id OAS-BROKER --name "enlace broker" --no-passphrase broker
echo "(US-FINCEN's key file is encrypted with Argon2id; the others are for unattended daemons, mode 0600)"
ls -l */secret.key | awk '{print "  " $1 "  " $NF}'

step "The authority signs the directory of cards (serial 1, valid 90 days)"
run $K directory build --authority authority --serial 1 --expires 90d --out directory \
	AR-UIF/card BR-PF/card US-FINCEN/card broker/card
run $K directory verify --authority-pub authority/authority.pub directory
run $K directory show directory

step "Fingerprints, to compare over the phone before trusting a card"
run $K fingerprint AR-UIF/card
run $K fingerprint authority/authority.pub

step "AR-UIF seals a case message with an attachment for BR-PF and US-FINCEN"
printf 'date,account,amount\n2026-09-01,AR-0042,9900\n2026-09-02,AR-0042,9800\n2026-09-03,AR-0042,9950\n' > transfers.csv
DIR="--directory directory --authority-pub authority/authority.pub"
run $E seal --key AR-UIF $DIR --to BR-PF --to US-FINCEN --case CASE-2026-0042 \
	--tlp amber --onward consent --reliability B --assessment 2 \
	--subject "Structured deposits, account AR-0042" \
	--text "Three deposits just below the reporting threshold on consecutive days." \
	--attach transfers.csv --out message.env
echo "The envelope is signed by AR-UIF and encrypted once; only the recipients' keys open it:"
if grep -q "Three deposits" message.env; then echo "  PLAINTEXT FOUND (this must not happen)"; exit 1; fi
echo "  (the text 'Three deposits' does not appear in message.env)"

step "BR-PF opens it: the signature is checked against the directory before anything is shown"
run $E open --key BR-PF $DIR --save BR-PF/received message.env
run cmp transfers.csv BR-PF/received/transfers.csv && echo "attachment identical"

step "US-FINCEN opens it too (its key needs the passphrase), as JSON for scripts"
run $E open --key US-FINCEN --passphrase-file US-FINCEN.pass $DIR --json message.env | cut -c1-160
echo "…"

step "The broker is not a recipient: it cannot open the message"
run $E open --key broker $DIR message.env || echo "(refused, as it must be)"

step "One byte changed in transit: refused"
cp message.env tampered.env
printf '\x5a' | dd of=tampered.env bs=1 seek=200 conv=notrunc 2>/dev/null
run $E open --key BR-PF $DIR tampered.env || echo "(refused, as it must be)"

step "BR-PF rotates its keys; the authority publishes serial 2; the old message still opens"
run $K agency rotate BR-PF
run $K directory build --authority authority --serial 2 --expires 90d --out directory \
	AR-UIF/card BR-PF/card US-FINCEN/card broker/card
run $E open --key BR-PF $DIR message.env | head -3

step "US-FINCEN's key is reported stolen: the authority revokes it (serial 3)"
run $K directory revoke --authority authority --in directory --id US-FINCEN --version 1 \
	--reason "laptop stolen" --out directory
run $E seal --key AR-UIF $DIR --to US-FINCEN --text "x" --out refused.env \
	|| echo "(nobody can seal to a revoked key)"

printf '\nThe keys, cards, directory and envelopes are in ./demo. The next step of\n'
printf 'enlace runs a broker and per-agency daemons between these identities.\n'

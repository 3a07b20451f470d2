#!/bin/bash
# Black-box tests of enlace-keys and the offline `enlace seal/open`:
# exit codes, file modes, refusals and their messages.
# usage: keys.sh ENLACE_KEYS ENLACE
set -u
K=$(realpath "$1") E=$(realpath "$2")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
checks=0 failed=0

check() { # check "what" command...: the command must succeed
	checks=$((checks + 1))
	local what=$1; shift
	if ! "$@" >out.txt 2>err.txt; then
		failed=$((failed + 1)); echo "FAIL: $what"; cat err.txt
	fi
}
expect_rc() { # expect_rc RC "what" command...: exit status RC, stderr kept in err.txt
	checks=$((checks + 1))
	local want=$1 what=$2; shift 2
	"$@" </dev/null >out.txt 2>err.txt
	local got=$?
	if [ "$got" != "$want" ]; then
		failed=$((failed + 1)); echo "FAIL: $what: exit $got, want $want"; cat err.txt
	fi
}
expect_err() { # expect_err "text": the last command's stderr says it
	checks=$((checks + 1))
	if ! grep -qF -- "$1" err.txt; then
		failed=$((failed + 1)); echo "FAIL: stderr lacks '$1':"; cat err.txt
	fi
}
expect_out() {
	checks=$((checks + 1))
	if ! grep -qF -- "$1" out.txt; then
		failed=$((failed + 1)); echo "FAIL: stdout lacks '$1':"; cat out.txt
	fi
}
mode_of() { stat -c %a "$1"; }
is() { # is "what" A B
	checks=$((checks + 1))
	if [ "$2" != "$3" ]; then failed=$((failed + 1)); echo "FAIL: $1: '$2' != '$3'"; fi
}

# --help everywhere, usage errors are 2.
for c in "authority init" "agency new" "agency rotate" "broker new" "directory build" \
	 "directory revoke" "directory show" "directory verify" "fingerprint"; do
	expect_rc 0 "$c --help" $K $c --help
	expect_out "usage:"
done
expect_rc 0 "enlace-keys --help" $K --help
expect_rc 2 "no command" $K
expect_rc 2 "unknown command" $K frobnicate
expect_err "unknown command"
expect_rc 2 "unknown option" $K agency new --id AR-UIF --kind FIU --bogus x A
expect_err "unknown option '--bogus'"
expect_rc 2 "another command's option, with its value" $K agency new --id AR-UIF --kind FIU --out x A
expect_err "option '--out' is not one of this command's"
expect_rc 2 "an option without its value" $K agency new --kind FIU A --id
expect_err "option '--id' needs a value"
expect_rc 2 "missing --kind" $K agency new --id AR-UIF --no-passphrase A
expect_err "--kind is required"
expect_rc 2 "bad kind" $K agency new --id AR-UIF --kind SPY --no-passphrase A
expect_rc 2 "bad id" $K agency new --id ar-uif --kind FIU --no-passphrase A
expect_err "not a valid id"
is "nothing created on usage errors" "$(ls)" "err.txt
out.txt"

# No terminal and no passphrase choice: refused, nothing written.
expect_rc 1 "no terminal" setsid $K agency new --id AR-UIF --kind FIU A
expect_err "--no-passphrase"
checks=$((checks + 1)); [ -e A/secret.key ] && { failed=$((failed + 1)); echo "FAIL: key written"; }

# The network's identities.
check "authority init" $K authority init --no-passphrase auth
expect_out "fingerprint"
check "AR-UIF" $K agency new --id AR-UIF --kind FIU --country AR \
	--name "Unidad de Información Financiera" --no-passphrase ar
check "BR-PF" $K agency new --id BR-PF --kind POLICE --no-passphrase br
printf 'correct horse battery\n' > pass
printf 'wrong\n' > wrong
check "US-FINCEN (passphrase)" $K agency new --id US-FINCEN --kind FIU --passphrase-file pass us
check "broker" $K broker new --id OAS-BROKER --no-passphrase broker
for f in auth/secret.key ar/secret.key br/secret.key us/secret.key broker/secret.key; do
	is "$f mode" "$(mode_of $f)" 600
done

# Never overwritten without --force.
before=$(sha256sum ar/secret.key)
expect_rc 1 "no overwrite" $K agency new --id AR-UIF --kind FIU --no-passphrase ar
expect_err "already exists (use --force"
is "key unchanged" "$(sha256sum ar/secret.key)" "$before"
check "--force" $K agency new --id AR-UIF --kind FIU --country AR \
	--name "Unidad de Información Financiera" --no-passphrase --force ar
checks=$((checks + 1)); [ "$(sha256sum ar/secret.key)" != "$before" ] || { failed=$((failed + 1)); echo "FAIL: --force kept the old key"; }

# An unencrypted key readable by others is refused.
chmod 644 br/secret.key
expect_rc 1 "insecure key" $K agency rotate br
expect_err "readable by others"
chmod 600 br/secret.key

# Wrong passphrase: said clearly, nothing changed.
before=$(sha256sum us/secret.key)
expect_rc 1 "wrong passphrase" $K agency rotate --passphrase-file wrong us
expect_err "us/secret.key: wrong passphrase"
is "unchanged after wrong passphrase" "$(sha256sum us/secret.key)" "$before"
expect_rc 1 "encrypted key, no terminal" setsid $K agency rotate us
expect_err "--passphrase-file"

# Rotation keeps the key file encrypted and the mode.
check "rotate" $K agency rotate --passphrase-file pass us
expect_out "key version 2"
is "mode after rotate" "$(mode_of us/secret.key)" 600
expect_rc 1 "rotated file still needs the passphrase" $K agency rotate --passphrase-file wrong us

# Directory.
check "build" $K directory build --authority auth --serial 1 --expires 90d --out dir.bin \
	ar/card br/card us/card broker/card
check "verify" $K directory verify --authority-pub auth/authority.pub dir.bin
expect_out "valid: serial 1, 4 agencies"
check "show" $K directory show dir.bin
expect_out "Unidad de Información Financiera"
expect_out "key v2"
check "show --json" $K directory show --json dir.bin
cp out.txt dir.json
check "json parses" python3 -c "import json,sys; d=json.load(open('dir.json')); assert d['serial']==1 and len(d['agencies'])==4"
expect_rc 2 "bad expiry" $K directory build --authority auth --serial 1 --expires soon --out x.bin ar/card
expect_rc 2 "bad serial" $K directory build --authority auth --serial -3 --expires 9d --out x.bin ar/card
expect_rc 1 "duplicate cards" $K directory build --authority auth --serial 1 --expires 9d --out x.bin ar/card ar/card
expect_err "same id"

# Another authority; a tampered directory.
check "other authority" $K authority init --no-passphrase auth2
expect_rc 1 "wrong authority" $K directory verify --authority-pub auth2/authority.pub dir.bin
expect_err "not signed by the pinned authority"
cp dir.bin bad.bin
printf '\x00' | dd of=bad.bin bs=1 seek=200 conv=notrunc 2>/dev/null
expect_rc 1 "tampered" $K directory verify --authority-pub auth/authority.pub bad.bin
expect_err "NOT VALID"
check "verify --json on failure" sh -c "$K directory verify --json --authority-pub auth/authority.pub bad.bin; test \$? = 1"
expect_out '"valid":false'

# Revocation raises the serial and shows.
check "revoke" $K directory revoke --authority auth --in dir.bin --id BR-PF --version 1 \
	--reason "device seized" --out dir2.bin
expect_out "directory serial 2"
check "show revoked" $K directory show dir2.bin
expect_out "REVOKED"
expect_out "device seized"
expect_rc 1 "revoke twice" $K directory revoke --authority auth --in dir2.bin --id BR-PF \
	--version 1 --reason again --out dir3.bin
expect_err "revoked already"
expect_rc 1 "revoke unknown" $K directory revoke --authority auth --in dir2.bin --id ZZ-NONE \
	--reason x --out dir3.bin
check "keep revocations" $K directory build --authority auth --serial 3 --expires 9d \
	--keep-revocations dir2.bin --out dir3.bin ar/card br/card us/card broker/card
expect_out "1 revocation(s)"

# Fingerprints agree between a card, the directory listing and creation.
check "fingerprint card" $K fingerprint ar/card
fp=$(cut -c1-39 out.txt)
check "show" $K directory show dir.bin
expect_out "$fp"
check "fingerprint pub" $K fingerprint auth/authority.pub
check "fingerprint dir" $K fingerprint dir.bin
expect_rc 1 "fingerprint garbage" $K fingerprint pass

# Offline seal and open with these identities.
printf 'date,amount\n2026-09-01,9900\n' > ledger.csv
S="--directory dir.bin --authority-pub auth/authority.pub"
check "seal" $E seal --key ar $S --to BR-PF --to US-FINCEN --case CASE-2026-0042 \
	--tlp amber --onward consent --subject "Structured deposits" --text "Three deposits." \
	--attach ledger.csv --out m.env
expect_out "sealed message"
check "open BR-PF" $E open --key br $S --save saved m.env
expect_out "signature VERIFIED"
expect_out "TLP:AMBER"
expect_out "Three deposits."
is "attachment saved" "$(cat saved/ledger.csv)" "$(cat ledger.csv)"
check "open US-FINCEN (rotated, passphrase)" $E open --key us --passphrase-file pass $S --json m.env
expect_out '"case":"CASE-2026-0042"'
expect_rc 1 "not a recipient" $E open --key broker $S m.env
expect_err "not a recipient"
expect_rc 1 "revoked recipient" $E seal --key ar --directory dir2.bin --authority-pub auth/authority.pub \
	--to BR-PF --text x --out m2.env
expect_err "revoked"
check "seal from BR-PF" $E seal --key br $S --to US-FINCEN --text "before revocation" --out fromb.env
expect_rc 1 "revoked sender" $E open --key us --passphrase-file pass --directory dir2.bin \
	--authority-pub auth/authority.pub fromb.env
expect_err "revoked"
expect_rc 1 "open refuses a changed byte" sh -c "cp m.env t.env; printf '\x41' | dd of=t.env bs=1 seek=100 conv=notrunc 2>/dev/null; $E open --key br $S t.env"
expect_err "REFUSED"
expect_rc 1 "over the payload limit" $E seal --key ar $S --to BR-PF --attach ledger.csv \
	--max-payload 20 --out m3.env
expect_err "over the payload limit of 20 bytes"
expect_rc 2 "bad tlp" $E seal --key ar $S --to BR-PF --tlp purple --out m3.env
expect_rc 1 "seal does not overwrite" $E seal --key ar $S --to BR-PF --text x --out m.env
expect_err "already exists"

echo "$checks checks, $failed failed"
[ "$failed" = 0 ]

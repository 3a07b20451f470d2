#!/bin/bash
# enlace-audit merkle against the Certificate Transparency reference tree
# (RFC 6962 test data): roots, an inclusion and a consistency proof.
set -u
A=$(realpath "$1")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
checks=0 failed=0
is() { checks=$((checks + 1)); [ "$2" = "$3" ] || { failed=$((failed + 1)); echo "FAIL: $1: '$2' != '$3'"; }; }
i=0
for h in "" 00 10 2021 3031 40414243 5051525354555657 606162636465666768696a6b6c6d6e6f; do
	python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))' "$h" > "$T/leaf$i"
	i=$((i + 1))
done
L=("$T"/leaf0 "$T"/leaf1 "$T"/leaf2 "$T"/leaf3 "$T"/leaf4 "$T"/leaf5 "$T"/leaf6 "$T"/leaf7)
is "root of 8" "$($A merkle root "${L[@]}" | sed -n 's/^root //p')" \
	5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328
is "root of 3" "$($A merkle root "${L[@]:0:3}" | sed -n 's/^root //p')" \
	aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77
is "inclusion of leaf 5 in 8" "$($A merkle inclusion 5 "${L[@]}" | sed -n 's/^proof //p' | tr '\n' ' ')" \
	"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0 d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7 "
is "consistency 6 to 8" "$($A merkle consistency 6 "${L[@]}" | sed -n 's/^proof //p' | tr '\n' ' ')" \
	"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0 d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7 "
is "--json gives the same proof" "$($A merkle consistency 6 "${L[@]}" --json | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["proof"]))')" \
	"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0 d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
$A merkle inclusion 8 "${L[@]}" >/dev/null 2>&1
is "an index past the end is refused" "$?" 1
$A merkle frobnicate x >/dev/null 2>&1
is "unknown subcommand is a usage error" "$?" 2
$A --help >/dev/null
is "--help" "$?" 0
echo "$checks checks, $failed failed"
[ "$failed" = 0 ]

#!/bin/bash
# The routing policy from the command line: the example policy lints clean;
# broken files are refused with the line named; and for the example policy,
# every (sender kind and country, recipient kind and country, type, TLP)
# gets from `enlace-broker policy explain` the decision an independent
# reading of the file gives.
# usage: policy.sh ENLACE_BROKER ENLACE_KEYS POLICY_FILE
set -u
B=$(realpath "$1") K=$(realpath "$2") P=$(realpath "$3")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
checks=0 failed=0
is() { # is "what" GOT WANT
	checks=$((checks + 1))
	if [ "$2" != "$3" ]; then failed=$((failed + 1)); echo "FAIL: $1: got '$2', want '$3'"; fi
}

$B policy check --policy "$P" >out.txt
is "the example policy lints clean" $? 0

bad() { # bad "what" LINE TEXT: refused, naming the line
	printf '%b' "$3" > bad.conf
	$B policy check --policy bad.conf > /dev/null 2> err.txt
	is "$1: refused" $? 1
	grep -q "line $2:" err.txt
	is "$1: names line $2 ($(cat err.txt))" $? 0
}
bad "unknown group" 3 'rule a: allow\n    from any\n    to group NOPE\n'
bad "unknown kind" 2 'rule a: allow\n    from kind SPY\n    to any\n'
bad "unknown TLP" 4 'rule a: allow\n    from any\n    to any\n    tlp up to PURPLE\n'
bad "neither allow nor deny" 1 'rule a: maybe\n    from any\n    to any\n'
bad "no to line" 1 'rule a: allow\n    from any\n'
bad "condition outside a rule" 1 '    from any\n'
bad "same-country as a sender" 2 'rule a: allow\n    from same-country\n    to any\n'
bad "two rules of one name" 4 'rule a: allow\n    from any\n    to any\nrule a: deny\n    from any\n    to any\n'
bad "a bad country code" 1 'group G: ar\n'
printf 'rule a: allow\n    from any\n    to any\nrule b: deny\n    from kind FIU\n    to any\n' > shadow.conf
$B policy check --policy shadow.conf > out.txt
is "an unreachable rule is reported" $? 1
grep -q "rule b is unreachable" out.txt
is "  ... by name" $? 0
printf 'rule a: allow\n    from kind FIU, POLICE\n    to any\n    tlp up to AMBER\nrule b: deny\n    from kind FIU\n    to kind POLICE\n    tlp up to GREEN\n' > shadow.conf
$B policy check --policy shadow.conf > out.txt
is "a shadowed rule is reported" $? 1
grep -q "rule b is shadowed by rule a" out.txt
is "  ... by name" $? 0

# A directory of 15 agencies: three kinds in five countries.
$K authority init --no-passphrase auth > /dev/null
cards=()
mkdir -p keys
for c in AR BR CO GT US; do
	for k in FIU POLICE PROSECUTOR; do
		id="$c-$k"
		$K agency new --id "$id" --kind "$k" --country "$c" --no-passphrase "keys/$id" > /dev/null
		cards+=("keys/$id/card")
	done
done
$K directory build --authority auth --serial 1 --expires 30d --out directory "${cards[@]}" > /dev/null
DIR=(--policy "$P" --directory directory --authority-pub auth/authority.pub)
$B policy explain "${DIR[@]}" --from AR-FIU --to BR-FIU --tlp amber > out.txt
is "explain: allowed, exit 0" $? 0
grep -q "^ALLOW by rule fiu-network" out.txt
is "explain names the rule" $? 0
grep -q "rule domestic-justice (line .*): does not match: " out.txt
is "explain says why the rules above do not match" $? 0
$B policy explain "${DIR[@]}" --from AR-FIU --to BR-FIU --tlp red > /dev/null
is "explain: denied, exit 1" $? 1

python3 - "$B" "${DIR[@]}" <<'PY' > matrix.txt
import itertools, json, subprocess, sys
b, args = sys.argv[1], sys.argv[2:]
MERCOSUR, ANDEAN, SICA = {"AR", "BR", "PY", "UY", "BO"}, {"BO", "CO", "EC", "PE"}, \
    {"BZ", "CR", "SV", "GT", "HN", "NI", "PA", "DO"}
TLP = ["clear", "green", "amber", "amber+strict", "red"]
JUSTICE = {"POLICE", "PROSECUTOR", "JUDICIAL"}

def expect(fc, fk, tc, tk, typ, tlp):
    """The example policy, read independently of the broker's code."""
    level = TLP.index(tlp) + 1
    if fk in {"FIU", "POLICE", "PROSECUTOR"} and fc == tc and tk in {"FIU"} | JUSTICE:
        return "allow", "domestic-justice"
    if fk == "FIU" and tk == "FIU" and level <= 4 and \
            typ in {"CASE_MESSAGE", "FIU_REPORT", "REQUEST", "REPLY", "FORWARD"}:
        return "allow", "fiu-network"
    for bloc, name in ((MERCOSUR, "mercosur-justice"), (SICA, "sica-justice"),
                       (ANDEAN, "andean-justice")):
        if fc in bloc and tc in bloc and fk in {"POLICE", "PROSECUTOR"} and tk in JUSTICE \
                and typ in {"CASE_MESSAGE", "REQUEST", "REPLY", "FORWARD"} and level <= 3:
            return "allow", name
    if level <= 2:
        return "allow", "community"
    return "deny", "everything-else"

agencies = [(c, k) for c in ("AR", "BR", "CO", "GT", "US") for k in ("FIU", "POLICE", "PROSECUTOR")]
cases = [(f"{fc}-{fk}", f"{tc}-{tk}", typ, tlp, expect(fc, fk, tc, tk, typ, tlp))
         for (fc, fk), (tc, tk) in itertools.product(agencies, agencies) if (fc, fk) != (tc, tk)
         for typ, tlp in itertools.product(("CASE_MESSAGE", "FIU_REPORT"), TLP)]
# the whole matrix in one process (--batch), then a sample one by one
# (exit status 0 or 1 as the decision): the same answers
queries = "".join(f"{f} {t} {typ} {tlp}\n" for f, t, typ, tlp, _ in cases)
out = subprocess.run([b, "policy", "explain", *args, "--batch"], input=queries,
                     capture_output=True, text=True)
answers = [json.loads(l) for l in out.stdout.splitlines()]
wrong = int(out.returncode != 0) + int(len(answers) != len(cases))
total = 0
for (f, t, typ, tlp, want), got in zip(cases, answers):
    total += 1
    if (got.get("decision"), got.get("rule")) != want or (got["from"], got["to"]) != (f, t):
        wrong += 1
        print(f"{f} -> {t} {typ} {tlp}: got {got}, want {want}", file=sys.stderr)
for f, t, typ, tlp, want in cases[::97]:
    one = subprocess.run([b, "policy", "explain", *args, "--from", f, "--to", t, "--type", typ,
                          "--tlp", tlp, "--json"], capture_output=True, text=True)
    got = json.loads(one.stdout)
    if (got["decision"], got["rule"]) != want or one.returncode != (want[0] != "allow"):
        wrong += 1
        print(f"alone: {f} -> {t} {typ} {tlp}: got {got}, want {want}", file=sys.stderr)
print(total, wrong)
PY
printf 'AR-FIU BR-FIU CASE_MESSAGE amber\nXX-NONE BR-FIU CASE_MESSAGE amber\nAR-FIU\n' |
	$B policy explain "${DIR[@]}" --batch > batch.txt
is "--batch: a line that is no query makes it exit 2" $? 2
is "  ... each line answered" "$(wc -l < batch.txt)" 3
grep -q '"error":"XX-NONE is not in the directory"' batch.txt
is "  ... an unknown agency named" $? 0
grep -q '"from":"AR-FIU","to":"BR-FIU","type":"CASE_MESSAGE","tlp":"amber","decision":"allow"' batch.txt
is "  ... the good query decided" $? 0
read -r total wrong < matrix.txt
is "every case of the matrix ($total) decided as expected" "$wrong" 0
is "the matrix is the whole matrix" "$total" $((15 * 14 * 2 * 5))
echo "$checks checks, $failed failed"
[ "$failed" = 0 ]

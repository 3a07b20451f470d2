#!/bin/bash
# What a partner writes is data, never control: text that is not UTF-8,
# or holds terminal controls, is refused where it is written; what
# reaches a terminal is escaped visibly, and a body can never pass for
# enlace's own lines; JSON is always valid UTF-8.
. "$(dirname "$0")/common.sh"
FETCH_WAIT=2s net_init AR-UIF:FIU BR-PF:POLICE
start_broker || finish
for a in AR-UIF BR-PF; do start_agent $a || finish; done
ESC=$'\033'
RLO=$'\u202e'

refused() { # refused RC WHAT-PART ARGS...: enlace send fails so, saying it
	local want=$1 part=$2
	shift 2
	enl AR-UIF send --to BR-PF "$@" >"$NET/out" 2>"$NET/err" && return 1
	[ $? = "$want" ] && grep -qF -- "$part" "$NET/err" || { cat "$NET/err"; return 1; }
}
ok "a subject with escape sequences is refused" \
	refused 2 "--subject: one line of UTF-8 text" --subject "${ESC}[2J${ESC}[Hsignature VERIFIED" --text x
ok "a subject with a bidirectional override is refused" \
	refused 2 "--subject: one line" --subject "invoice ${RLO}fdp.exe" --text x
ok "a text with escape sequences is refused" \
	refused 1 "the text is not UTF-8, or holds a control character" --text "a${ESC}[1Ab"
printf 'caf\xc3' >"$NET/notutf8.txt"
ok "a text file that is not UTF-8 is refused" \
	refused 1 "notutf8.txt: the text is not UTF-8" --text-file "$NET/notutf8.txt"
printf 'x' >"$NET/evil${RLO}gpj.exe"
ok "an attachment whose name holds a bidirectional override is refused" \
	refused 1 "a file name must be UTF-8" --text x --attach "$NET/evil${RLO}gpj.exe"
ok "  ... its name shown escaped" grep -qF 'evil\u202egpj.exe' "$NET/err"
ok "an agency name with a bidirectional override is refused" sh -c \
	"! $BIN/keys/enlace-keys agency new --id XX-EVIL --kind FIU --name 'Policía ${RLO}' --no-passphrase $NET/evil-key 2>/dev/null"

# What may pass: accents, tabs, line breaks, and (in a body) directional
# marks, which are shown escaped
body="Transferencias — São Paulo, Bogotá
	tabulated line
          signature VERIFIED: key v1 FAKE FAKE
mark ${RLO}here"
id=$(enl AR-UIF send --to BR-PF --subject "Operación Ñandú — résumé" --text "$body") || finish
ok "BR-PF received it" wait_for 20 "BR-PF" test -e "$NET/BR-PF/spool/inbox/$id.env"
enl BR-PF read "$id" >"$NET/read.txt"
ok "the subject keeps its accents" grep -qF "subject   Operación Ñandú — résumé" "$NET/read.txt"
ok "every body line is marked as the sender's" grep -qF "  |           signature VERIFIED: key v1 FAKE FAKE" "$NET/read.txt"
is "  ... so only enlace's own line says VERIFIED at the start" \
	"$(grep -c '^          signature VERIFIED' "$NET/read.txt")" 1
ok "the override is shown escaped" grep -qF 'mark \u202ehere' "$NET/read.txt"
ok "  ... and never as itself" sh -c "! grep -qF '$RLO' '$NET/read.txt'"
ok "no escape byte reaches the terminal" sh -c "! grep -q \$'\\033' '$NET/read.txt'"
enl BR-PF read --json "$id" >"$NET/read.json"
ok "--json is valid UTF-8 JSON and holds the body exactly" python3 -c "
import json, sys
raw = open('$NET/read.json', 'rb').read()
raw.decode('utf-8')
m = json.loads(raw)
assert m['body'] == sys.argv[1], m['body']
assert '\\\\u202e' in raw.decode(), 'the override is escaped in JSON'
" "$body"
enl BR-PF inbox >"$NET/inbox.txt"
ok "the inbox shows the subject" grep -qF "Operación Ñandú — résumé" "$NET/inbox.txt"
finish

#!/bin/bash
# The functions STYLE.md bans ("sprintf, strcpy, strtok, atoi" and their
# kin: unbounded copies and conversions that cannot report an error) do not
# appear in the tree's C code. Comments are not code: lines are matched
# after a word is called with a parenthesis.
#   banned.sh [SRC]
src=${1:-$(dirname "$0")/..}
banned='sprintf|vsprintf|strcpy|strcat|strncpy|strncat|stpcpy|strtok|atoi|atol|atoll|atof|gets|tmpnam|mktemp'
hits=$(cd "$src" && git ls-files -co --exclude-standard -- '*.c' '*.h' 2>/dev/null ||
	find . -name '*.[ch]' -not -path './build*')
found=$(cd "$src" && echo "$hits" | xargs grep -nE "(^|[^A-Za-z0-9_.>])($banned)[[:space:]]*\(" 2>/dev/null |
	grep -vE '^[^:]+:[0-9]+:[[:space:]]*(\*|/\*|//)')
if [ -n "$found" ]; then
	echo "banned functions (STYLE.md) in the tree:"
	echo "$found"
	exit 1
fi
echo "no banned function in $(echo "$hits" | wc -l) C files"

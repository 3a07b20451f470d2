#!/bin/sh
# Installs, from Debian's packages, whatever the build, the tests and the
# demonstration need and the machine lacks. Runs apt-get update once, and
# only when something is missing.
set -eu
packages="meson ninja-build pkg-config gcc clang libclang-rt-14-dev cmake
python3 libsodium-dev libprotobuf-c-dev protobuf-c-compiler libnng-dev
libsqlite3-dev libinih-dev sqlite3"
missing=""
for p in $packages; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: not root; install these packages:$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $missing

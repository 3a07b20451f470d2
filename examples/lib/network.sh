# Shell functions to bring up an enlace network on loopback: a directory
# authority, a broker and agencies, each with its config, data and control
# socket under one folder. Sourced by examples/demo.sh and the integration
# tests. Needs BIN (the build folder) and NET (the network's folder).

free_port() { # a TCP port on 127.0.0.1 that nothing listens on now
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND until it succeeds.
wait_for() {
	local limit=$1 what=$2 end
	shift 2
	end=$(($(date +%s%N) / 1000000 + limit * 1000))
	until "$@" >/dev/null 2>&1; do
		if [ $(($(date +%s%N) / 1000000)) -ge $end ]; then
			echo "timed out after ${limit}s waiting for: $what" >&2
			return 1
		fi
		sleep 0.05
	done
}

# net_init AGENCY:KIND... : keys, cards, a signed directory and configs.
# An AUDITOR gets its key and card (it reads the log with enlace-audit
# --key), no agent.
net_init() {
	local k=$BIN/keys/enlace-keys spec id kind cards=()
	mkdir -p "$NET/broker"
	BROKER_PORT=${BROKER_PORT:-$(free_port)}
	LOG_PORT=${LOG_PORT:-$(free_port)}
	$k authority init --no-passphrase "$NET/authority" >/dev/null || return 1
	$k broker new --id OAS-BROKER --name "enlace broker" --no-passphrase "$NET/broker/key" >/dev/null || return 1
	cards+=("$NET/broker/key/card")
	for spec in "$@"; do
		id=${spec%%:*} kind=${spec##*:}
		mkdir -p "$NET/$id"
		$k agency new --id "$id" --kind "$kind" --no-passphrase "$NET/$id/key" >/dev/null || return 1
		cards+=("$NET/$id/key/card")
	done
	$k directory build --authority "$NET/authority" --serial 1 --expires 30d \
		--out "$NET/directory" "${cards[@]}" >/dev/null || return 1
	cat >"$NET/broker/broker.conf" <<CONF
[broker]
listen = tcp://127.0.0.1:$BROKER_PORT
log_listen = http://127.0.0.1:$LOG_PORT
data_dir = $NET/broker/data
key = $NET/broker/key
directory = $NET/directory
authority_pub = $NET/authority/authority.pub
policy = $NET/broker/policy.conf
CONF
	# every agency may write to every other unless POLICY names a file
	if [ -n "${POLICY:-}" ]; then
		cp "$POLICY" "$NET/broker/policy.conf"
	else
		printf 'rule everyone: allow\n    from any\n    to any\n' >"$NET/broker/policy.conf"
	fi
	for spec in "$@"; do
		id=${spec%%:*}
		cp "$NET/directory" "$NET/$id/directory"
		[ "${spec##*:}" = AUDITOR ] && continue
		cat >"$NET/$id/agent.conf" <<CONF
[agent]
broker = tcp://127.0.0.1:$BROKER_PORT
broker_id = OAS-BROKER
key = $NET/$id/key
directory = $NET/$id/directory
authority_pub = $NET/authority/authority.pub
spool = $NET/$id/spool
control = $NET/$id/agent.sock
fetch_wait = ${FETCH_WAIT:-25s}
log_poll = ${LOG_POLL:-10s}
CONF
	done
}

start_broker() {
	local before
	before=$(grep -c "ready on" "$NET/broker/log" 2>/dev/null || true)
	$BIN/broker/enlace-broker --config "$NET/broker/broker.conf" >>"$NET/broker/log" 2>&1 &
	echo $! >"$NET/broker/pid"
	wait_for 10 "the broker to listen" \
		sh -c "[ \$(grep -c 'ready on' '$NET/broker/log') -gt ${before:-0} ]"
}

stop_broker() { # stop_broker [SIGNAL]
	local pid
	pid=$(cat "$NET/broker/pid" 2>/dev/null) || return 0
	kill -"${1:-TERM}" "$pid" 2>/dev/null
	# its last publication syncs the file system: slow when other work
	# writes beside it (CI runs tests two at a time)
	wait_for 30 "the broker to exit" sh -c "! kill -0 $pid"
	rm -f "$NET/broker/pid"
}

start_agent() { # start_agent ID
	local before
	before=$(grep -c " ready;" "$NET/$1/log" 2>/dev/null || true)
	$BIN/client/enlace-agent --config "$NET/$1/agent.conf" >>"$NET/$1/log" 2>&1 &
	echo $! >"$NET/$1/pid"
	wait_for 10 "agent $1 ready" \
		sh -c "[ \$(grep -c ' ready;' '$NET/$1/log') -gt ${before:-0} ]"
}

stop_agent() { # stop_agent ID [SIGNAL]
	local pid
	pid=$(cat "$NET/$1/pid" 2>/dev/null) || return 0
	kill -"${2:-TERM}" "$pid" 2>/dev/null
	wait_for 40 "agent $1 to exit" sh -c "! kill -0 $pid"
	rm -f "$NET/$1/pid" "$NET/$1/agent.sock"
}

stop_all() {
	local d
	for d in "$NET"/*/; do
		[ -f "$d/agent.conf" ] && stop_agent "$(basename "$d")" KILL
	done
	stop_broker KILL
}

# enl ID ARGS...: the enlace command line against ID's agent.
enl() {
	local id=$1
	shift
	ENLACE_SOCKET="$NET/$id/agent.sock" $BIN/client/enlace "$@"
}

# cosigned ID [SIZE]: ID's agent cosigned the checkpoint it holds (of at
# least SIZE entries), without an alarm, and the broker's published
# checkpoint carries that cosignature
cosigned() {
	enl "$1" status --json | python3 -c "import json,sys; s=json.load(sys.stdin); sys.exit(not (s['checkpoint_size'] >= max(1, ${2:-1}) and s['cosigned_size'] == s['checkpoint_size'] and not s['log_alarm']))" &&
		grep -q "^— $1 " "$NET/broker/data/log/checkpoint"
}

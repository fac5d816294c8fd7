#!/usr/bin/env bash
# ensure-services.sh — make sure the services the test suite needs are
# available on this (Debian 12) machine:
#
#   * PostgreSQL on 127.0.0.1:5432, trust auth for user postgres over TCP,
#     database "test"
#   * Redis on 127.0.0.1:6379
#   * Chromium at /usr/bin/chromium (browser tests)
#   * a C compiler (go test -race needs cgo)
#   * go on PATH
#
# Idempotent: anything already in place is left alone. Installs packages
# only through apt-get. Must run as root when something has to be installed
# or started.
set -euo pipefail

export PATH="$PATH:/usr/local/go/bin:${HOME:-/root}/go/bin"
export DEBIAN_FRONTEND=noninteractive

PG_HOST=127.0.0.1
PG_PORT=5432
PG_DB=test
REDIS_HOST=127.0.0.1
REDIS_PORT=6379

log() { printf '[ensure-services] %s\n' "$*"; }
warn() { printf '[ensure-services] WARNING: %s\n' "$*" >&2; }
die() { printf '[ensure-services] ERROR: %s\n' "$*" >&2; exit 1; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo -n "$@"
	else
		die "need root to run: $*"
	fi
}

APT_UPDATED=0
apt_install() {
	if [ "$APT_UPDATED" -eq 0 ]; then
		log "apt-get update"
		as_root apt-get update -q
		APT_UPDATED=1
	fi
	log "apt-get install -y $*"
	as_root apt-get install -y -q --no-install-recommends "$@"
}

# wait_for SECONDS DESCRIPTION CMD... — retry CMD once a second.
wait_for() {
	local secs=$1 what=$2
	shift 2
	local i
	for ((i = 0; i < secs; i++)); do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 1
	done
	"$@" >/dev/null 2>&1 || die "$what not ready after ${secs}s"
}

# ---------------------------------------------------------------- Go / gcc

ensure_go() {
	if command -v go >/dev/null 2>&1; then
		log "go: $(go version)"
	else
		warn "go not found on PATH or in /usr/local/go/bin"
	fi
}

ensure_cc() {
	# The race detector needs cgo, hence a C compiler and libc headers.
	if command -v gcc >/dev/null 2>&1 && [ -e /usr/include/stdlib.h ]; then
		log "gcc: present"
	else
		log "gcc / libc6-dev missing (needed by go test -race)"
		apt_install gcc libc6-dev
	fi
}

# ---------------------------------------------------------------- PostgreSQL

pg_ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; }

pg_psql() { psql -X -w -h "$PG_HOST" -p "$PG_PORT" -U postgres "$@"; }

pg_trust_ok() { pg_psql -d postgres -tAc 'select 1' 2>/dev/null | grep -qx 1; }

# pg_cluster prints "VERSION NAME" of the local cluster to use: the one
# configured for port 5432, else the first one, else nothing.
pg_cluster() {
	command -v pg_lsclusters >/dev/null 2>&1 || return 0
	local line
	line=$(pg_lsclusters -h 2>/dev/null | awk -v p="$PG_PORT" '$3 == p { print $1, $2; exit }')
	if [ -z "$line" ]; then
		line=$(pg_lsclusters -h 2>/dev/null | awk 'NR == 1 { print $1, $2 }')
	fi
	printf '%s' "$line"
}

pg_server_installed() {
	compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

ensure_pg_client() {
	if ! command -v pg_isready >/dev/null 2>&1 || ! command -v psql >/dev/null 2>&1; then
		log "pg_isready/psql missing"
		apt_install postgresql-client
	fi
}

# pg_configure VERSION NAME — make the cluster listen on localhost:5432.
pg_configure() {
	local ver=$1 name=$2 confd="/etc/postgresql/$1/$2/conf.d"
	local conf="$confd/zz-switchboard-ci.conf"
	if [ -f "$conf" ]; then
		return 0
	fi
	log "writing $conf (listen_addresses='localhost', port=$PG_PORT)"
	as_root mkdir -p "$confd"
	printf "# written by scripts/ensure-services.sh\nlisten_addresses = 'localhost'\nport = %s\n" "$PG_PORT" |
		as_root tee "$conf" >/dev/null
	# Debian's postgresql.conf includes conf.d; make sure of it.
	local main="/etc/postgresql/$ver/$name/postgresql.conf"
	if [ -f "$main" ] && ! grep -Eq "^[[:space:]]*include_dir[[:space:]]*=[[:space:]]*'conf\.d'" "$main"; then
		log "adding include_dir = 'conf.d' to $main"
		echo "include_dir = 'conf.d'" | as_root tee -a "$main" >/dev/null
	fi
}

pg_start() {
	if ! pg_server_installed; then
		log "PostgreSQL server not installed"
		apt_install postgresql
		# The package may have created and started a cluster already.
		if pg_ready; then
			return 0
		fi
	fi

	local cl ver name
	cl=$(pg_cluster)
	if [ -z "$cl" ]; then
		if [ -d /etc/postgresql ] && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
			ver=$(ls /etc/postgresql | head -1)
		else
			ver=$(ls /usr/lib/postgresql | sort -V | tail -1)
		fi
		log "no PostgreSQL cluster; pg_createcluster $ver main"
		as_root pg_createcluster "$ver" main -p "$PG_PORT" -- --auth-local=peer --auth-host=trust
		cl="$ver main"
	fi
	read -r ver name <<<"$cl"

	pg_configure "$ver" "$name"

	# The socket directory lives on tmpfs on some machines.
	as_root mkdir -p /var/run/postgresql
	as_root chown postgres:postgres /var/run/postgresql
	as_root chmod 2775 /var/run/postgresql

	local status
	status=$(pg_lsclusters -h 2>/dev/null | awk -v v="$ver" -v n="$name" '$1 == v && $2 == n { print $4 }')
	if [ "$status" = "online" ]; then
		log "cluster $ver/$name is online but not on $PG_HOST:$PG_PORT; restarting"
		as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" restart
	else
		log "starting cluster: pg_ctlcluster --skip-systemctl-redirect $ver $name start"
		as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start ||
			warn "pg_ctlcluster start exited $? (see /var/log/postgresql/postgresql-$ver-$name.log)"
	fi
}

# pg_fix_trust — put "host all all 127.0.0.1/32 trust" at the top of the
# local cluster's pg_hba.conf and reload.
pg_fix_trust() {
	local cl ver name hba
	cl=$(pg_cluster)
	if [ -z "$cl" ]; then
		warn "trust auth for postgres@$PG_HOST fails and no local cluster to fix"
		return 1
	fi
	read -r ver name <<<"$cl"
	hba=$(su postgres -c "psql -X -tAc 'show hba_file'" 2>/dev/null || true)
	[ -n "$hba" ] || hba="/etc/postgresql/$ver/$name/pg_hba.conf"
	[ -f "$hba" ] || { warn "$hba not found"; return 1; }
	log "adding trust for 127.0.0.1/32 and ::1/128 at the top of $hba"
	as_root sed -i \
		-e '1i # added by scripts/ensure-services.sh' \
		-e '1i host all all 127.0.0.1/32 trust' \
		-e '1i host all all ::1/128 trust' "$hba"
	as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" reload
	sleep 1
}

ensure_postgres() {
	ensure_pg_client
	if pg_ready; then
		log "PostgreSQL: accepting connections on $PG_HOST:$PG_PORT"
	else
		log "PostgreSQL: not ready on $PG_HOST:$PG_PORT"
		pg_start
		log "waiting for PostgreSQL (up to 30s)"
		wait_for 30 "PostgreSQL on $PG_HOST:$PG_PORT" pg_ready
		log "PostgreSQL: accepting connections on $PG_HOST:$PG_PORT"
	fi

	if pg_trust_ok; then
		log "PostgreSQL: trust auth for postgres@$PG_HOST works"
	else
		log "PostgreSQL: trust auth for postgres@$PG_HOST fails"
		pg_fix_trust || true
		wait_for 10 "trust auth for postgres@$PG_HOST" pg_trust_ok
		log "PostgreSQL: trust auth for postgres@$PG_HOST works"
	fi

	if [ "$(pg_psql -d postgres -tAc "select 1 from pg_database where datname = '$PG_DB'")" = "1" ]; then
		log "PostgreSQL: database '$PG_DB' exists"
	else
		log "PostgreSQL: creating database '$PG_DB'"
		pg_psql -d postgres -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$PG_DB\"" ||
			su postgres -c "createdb '$PG_DB'"
	fi
}

# ---------------------------------------------------------------- Redis

redis_ready() { [ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]; }

ensure_redis() {
	if ! command -v redis-cli >/dev/null 2>&1; then
		log "redis-cli missing"
		apt_install redis-tools
	fi
	if redis_ready; then
		log "Redis: PONG from $REDIS_HOST:$REDIS_PORT"
		return 0
	fi
	log "Redis: no PONG from $REDIS_HOST:$REDIS_PORT"
	if ! command -v redis-server >/dev/null 2>&1; then
		log "redis-server not installed"
		apt_install redis-server
		# The package's service may have come up on its own.
		sleep 1
		if redis_ready; then
			log "Redis: PONG from $REDIS_HOST:$REDIS_PORT"
			return 0
		fi
	fi
	mkdir -p /tmp
	log "starting redis-server on $REDIS_HOST:$REDIS_PORT (log /tmp/redis-ci.log)"
	redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
		--save "" --appendonly no --dir /tmp --logfile /tmp/redis-ci.log
	wait_for 30 "Redis on $REDIS_HOST:$REDIS_PORT" redis_ready
	log "Redis: PONG from $REDIS_HOST:$REDIS_PORT"
}

# ---------------------------------------------------------------- Chromium

ensure_chromium() {
	if [ -x /usr/bin/chromium ]; then
		log "Chromium: /usr/bin/chromium present"
	else
		log "Chromium: /usr/bin/chromium missing"
		apt_install chromium
	fi
}

# ---------------------------------------------------------------- main

ensure_go
ensure_cc
ensure_postgres
ensure_redis
ensure_chromium
log "all services ready"

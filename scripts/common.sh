# Shared set-up for the demo, test and benchmark scripts: installs what is missing (apt packages,
# the pinned cargo-pgrx, pgrx's registration of the system PostgreSQL 15), builds and installs the
# extension, and runs a throwaway PostgreSQL cluster as an unprivileged user. Idempotent: every
# step checks first and skips what is already there.
# shellcheck shell=bash
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_MAJOR=15
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
PG_CONFIG=$PG_BIN/pg_config
CARGO_PGRX_VERSION=0.18.0
APT_PACKAGES=(postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR postgresql-$PG_MAJOR-cron
              libclang-dev clang sudo libssl-dev pkg-config dpkg-dev python3)

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO=sudo; fi
export PATH="$HOME/.cargo/bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }

# The extension is installed into the one system PostgreSQL: two scripts installing or running
# clusters against it at once would replace the library under each other's backends. Every
# script that installs takes this lock for its whole run (children inherit it).
lock_install() {
    if [ -z "${CV_INSTALL_LOCKED:-}" ]; then
        exec 9>/tmp/customer_value_install.lock
        flock 9
        export CV_INSTALL_LOCKED=1
    fi
}

ensure_packages() {
    local missing=() p
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        step "installing apt packages: ${missing[*]}"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
}

ensure_cargo_pgrx() {
    if ! cargo pgrx --version 2>/dev/null | grep -q "cargo-pgrx $CARGO_PGRX_VERSION"; then
        step "installing cargo-pgrx $CARGO_PGRX_VERSION (once; about 12 minutes on 2 cores)"
        cargo install cargo-pgrx --version "$CARGO_PGRX_VERSION" --locked
    fi
    if ! grep -qs "^pg$PG_MAJOR *= *\"$PG_CONFIG\"" "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
        step "registering PostgreSQL $PG_MAJOR with pgrx"
        cargo pgrx init --pg$PG_MAJOR "$PG_CONFIG"
    fi
}

ensure_toolchain() {
    ensure_packages
    ensure_cargo_pgrx
}

install_extension() {
    step "building and installing the extension (release)"
    (cd "$ROOT" && cargo pgrx install --release --pg-config "$PG_CONFIG" ${SUDO:+--sudo})
}

# Runs a command as the cluster's OS user: postgres when we are root (initdb refuses root).
as_db_user() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# start_cluster [extra postgresql.conf lines…]: a fresh cluster on a Unix socket in a temp dir,
# stopped and removed when the calling script exits.
start_cluster() {
    # The server inherits our environment. The golden tests set CV_SERVER_RUST_BACKTRACE=1 to
    # check that a backtrace never reaches an error's DETAIL even so (see _PG_init).
    unset RUST_BACKTRACE RUST_LIB_BACKTRACE
    if [ -n "${CV_SERVER_RUST_BACKTRACE:-}" ]; then export RUST_BACKTRACE=1; fi
    CLUSTER_DIR=$(mktemp -d /tmp/customer_value_pg.XXXXXX)
    chmod 755 "$CLUSTER_DIR"
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$CLUSTER_DIR"; fi
    as_db_user "$PG_BIN/initdb" -D "$CLUSTER_DIR/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >/dev/null
    {
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$CLUSTER_DIR'"
        echo "port = 5499"
        echo "fsync = off"
        echo "max_parallel_workers_per_gather = 2"
        local line
        for line in "$@"; do echo "$line"; done
    } | as_db_user tee -a "$CLUSTER_DIR/data/postgresql.conf" >/dev/null
    as_db_user "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w start >/dev/null
    export PGHOST=$CLUSTER_DIR PGPORT=5499 PGUSER=postgres PGDATABASE=postgres
    trap stop_cluster EXIT
}

stop_cluster() {
    if [ -n "${CLUSTER_DIR:-}" ] && [ -d "$CLUSTER_DIR" ]; then
        as_db_user "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
        rm -rf "$CLUSTER_DIR"
    fi
}

psql_run() {
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"
}

# bench_flags "$@": the flags the benchmarks share — --no-python (sets python=0), --sizes "N …"
# (sets sizes) and --algorithms "a b …" (sets algorithms); the caller sets the defaults first.
bench_flags() {
    while [ $# -gt 0 ]; do
        case "$1" in
            --no-python) python=0 ;;
            --sizes) sizes=$2; shift ;;
            --algorithms) algorithms=$2; shift ;;
        esac
        shift
    done
}

# load_cdnow_master TABLE: the CDNOW master log (data/cdnow) as TABLE (customer_id, purchased,
# cds, amount), analysed.
load_cdnow_master() {
    psql_run -c "CREATE TABLE $1 (customer_id int, purchased date, cds int, amount numeric)"
    awk 'NR > 1 { printf "%d,%s,%s,%s\n", $1, $2, $3, $4 }' "$ROOT/data/cdnow/CDNOW_master.txt" |
        psql_run -c "COPY $1 FROM STDIN (FORMAT csv)"
    psql_run -c "VACUUM ANALYZE $1"
}

# Citus (installed by hand, not by this project): is it in the PostgreSQL under test?
citus_installed() { [ -f "$("$PG_CONFIG" --pkglibdir)/citus.so" ]; }

# start_citus DB PORT… [-- extra postgresql.conf lines…]: one throwaway cluster per port on
# localhost (the first is the coordinator, the others are added as workers), each with citus and
# pg_cron preloaded and database DB with the citus extension; stopped and removed on exit.
# node_psql PORT psql-args… talks to one of them.
start_citus() {
    local db=$1 port
    shift
    CITUS_PORTS=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do CITUS_PORTS+=("$1"); shift; done
    [ "${1:-}" = "--" ] && shift
    unset RUST_BACKTRACE RUST_LIB_BACKTRACE
    CITUS_DIR=$(mktemp -d /tmp/customer_value_citus.XXXXXX)
    chmod 755 "$CITUS_DIR"
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$CITUS_DIR"; fi
    trap stop_citus EXIT
    for port in "${CITUS_PORTS[@]}"; do
        as_db_user "$PG_BIN/initdb" -D "$CITUS_DIR/$port" -U postgres -A trust -E UTF8 --locale=C --no-sync >/dev/null
        {
            echo "listen_addresses = 'localhost'"
            echo "port = $port"
            echo "unix_socket_directories = '$CITUS_DIR'"
            echo "shared_preload_libraries = 'citus, pg_cron'"
            echo "cron.database_name = '$db'"
            echo "cron.use_background_workers = on"
            echo "max_worker_processes = 32"
            echo "max_prepared_transactions = 100"
            echo "fsync = off"
            echo "max_parallel_workers_per_gather = 2"
            local line
            for line in "$@"; do echo "$line"; done
        } | as_db_user tee -a "$CITUS_DIR/$port/postgresql.conf" >/dev/null
        as_db_user "$PG_BIN/pg_ctl" -D "$CITUS_DIR/$port" -l "$CITUS_DIR/$port.log" -w start >/dev/null
        node_psql "$port" -d postgres -c "CREATE DATABASE $db"
        node_psql "$port" -d "$db" -c "CREATE EXTENSION citus"
    done
}

# add_citus_workers DB COORDINATOR PORT…
add_citus_workers() {
    local db=$1 coordinator=$2 port
    shift 2
    node_psql "$coordinator" -d "$db" -c "SELECT citus_set_coordinator_host('localhost', $coordinator)" >/dev/null
    for port in "$@"; do
        node_psql "$coordinator" -d "$db" -c "SELECT citus_add_node('localhost', $port)" >/dev/null
    done
}

node_psql() { local port=$1; shift; "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h localhost -p "$port" -U postgres "$@"; }

stop_citus() {
    local port
    if [ -n "${CITUS_DIR:-}" ] && [ -d "$CITUS_DIR" ]; then
        for port in "${CITUS_PORTS[@]}"; do
            if [ -d "$CITUS_DIR/$port" ]; then
                as_db_user "$PG_BIN/pg_ctl" -D "$CITUS_DIR/$port" -m immediate -w -t 10 stop >/dev/null 2>&1 || true
            fi
        done
        rm -rf "$CITUS_DIR"
    fi
}

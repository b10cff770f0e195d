# shellcheck shell=bash
# Shared helpers for scripts/test and scripts/demo: locate (or install)
# PostgreSQL and PgBouncer, run commands as the `postgres` OS user when we are
# root, and small port/logging utilities. Source it; it defines functions only
# (plus SLUICE_ROOT).

SLUICE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

sluice_say() { printf '%s\n' "$*" >&2; }
sluice_die() { sluice_say "error: $*"; exit 1; }

# Prints "sudo" when we are not root (and sudo exists), nothing when root.
sluice_sudo() {
    if [ "$(id -u)" = 0 ]; then
        return 0
    elif command -v sudo >/dev/null 2>&1; then
        echo sudo
    else
        sluice_die "need root or sudo to install packages"
    fi
}

# Prints the directory holding initdb: `pg_config --bindir` if it has one,
# else the newest /usr/lib/postgresql/<version>/bin. Fails if none.
sluice_find_pg_bin() {
    local dir
    if [ -n "${SLUICE_PG_BIN:-}" ] && [ -x "$SLUICE_PG_BIN/initdb" ]; then
        echo "$SLUICE_PG_BIN"
        return 0
    fi
    if command -v pg_config >/dev/null 2>&1; then
        dir="$(pg_config --bindir 2>/dev/null || true)"
        if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then
            echo "$dir"
            return 0
        fi
    fi
    dir="$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' 2>/dev/null |
        sed 's|/bin/initdb$||; s|.*/||' | sort -V | tail -n 1)"
    if [ -n "$dir" ]; then
        echo "/usr/lib/postgresql/$dir/bin"
        return 0
    fi
    return 1
}

_sluice_apt_updated=0

# apt-get installs packages without letting their services start
# (policy-rc.d answers 101 "action forbidden" while we install).
sluice_apt_install() {
    local sudo policy=/usr/sbin/policy-rc.d made_policy=0 rc=0
    command -v apt-get >/dev/null 2>&1 ||
        sluice_die "cannot install $* automatically (no apt-get); install it and retry"
    sudo="$(sluice_sudo)"
    if [ ! -e "$policy" ]; then
        $sudo sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
        made_policy=1
    fi
    if [ "$_sluice_apt_updated" = 0 ]; then
        $sudo apt-get update -qq || rc=$?
        _sluice_apt_updated=1
    fi
    if [ "$rc" = 0 ]; then
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-upgrade --no-install-recommends "$@" ||
            rc=$?
    fi
    if [ "$made_policy" = 1 ]; then
        $sudo rm -f "$policy"
    fi
    [ "$rc" = 0 ] || sluice_die "apt-get install $* failed (exit $rc)"
}

# Stops the clusters that the Debian package may have created and started;
# tests and the demo use throwaway clusters only.
sluice_stop_packaged_clusters() {
    local sudo ver name
    command -v pg_lsclusters >/dev/null 2>&1 || return 0
    sudo="$(sluice_sudo)"
    pg_lsclusters --no-header 2>/dev/null | while read -r ver name _; do
        $sudo pg_ctlcluster --force "$ver" "$name" stop >/dev/null 2>&1 || true
    done
}

# Makes sure PostgreSQL server binaries, psql and pgbench are available
# (installing the `postgresql` package if initdb is missing). Exports PG_BIN
# and SLUICE_PG_BIN (read by sluice-testkit) and appends PG_BIN to PATH.
sluice_ensure_postgres() {
    if ! PG_BIN="$(sluice_find_pg_bin)"; then
        sluice_say "PostgreSQL server binaries not found; installing the postgresql package"
        sluice_apt_install postgresql
        sluice_stop_packaged_clusters
        PG_BIN="$(sluice_find_pg_bin)" || sluice_die "initdb still not found after installing postgresql"
    fi
    export PG_BIN SLUICE_PG_BIN="$PG_BIN"
    export PATH="$PATH:$PG_BIN"
    local tool
    for tool in psql pgbench pg_ctl; do
        command -v "$tool" >/dev/null 2>&1 || sluice_die "$tool not found (looked on PATH and in $PG_BIN)"
    done
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        sluice_say "creating the postgres OS user (the server refuses to run as root)"
        useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/sh postgres
    fi
}

# Installs PgBouncer (for side-by-side tests) if it is missing; exports
# SLUICE_PGBOUNCER_BIN.
sluice_ensure_pgbouncer() {
    local bin
    bin="$(command -v pgbouncer 2>/dev/null || true)"
    if [ -z "$bin" ] && [ -x /usr/sbin/pgbouncer ]; then
        bin=/usr/sbin/pgbouncer
    fi
    if [ -z "$bin" ]; then
        sluice_say "pgbouncer not found; installing the pgbouncer package"
        sluice_apt_install pgbouncer
        local sudo
        sudo="$(sluice_sudo)"
        $sudo sh -c 'command -v service >/dev/null 2>&1 && service pgbouncer stop' >/dev/null 2>&1 || true
        bin="$(command -v pgbouncer 2>/dev/null || echo /usr/sbin/pgbouncer)"
        [ -x "$bin" ] || sluice_die "pgbouncer still not found after installing it"
    fi
    export SLUICE_PGBOUNCER_BIN="$bin"
}

# Runs a command as the `postgres` OS user when we are root (from /, so an
# unreadable working directory does not matter), as ourselves otherwise.
sluice_as_pg() {
    if [ "$(id -u)" != 0 ]; then
        "$@"
    elif command -v runuser >/dev/null 2>&1; then
        (cd / && runuser -u postgres -- "$@")
    elif command -v setpriv >/dev/null 2>&1; then
        (cd / && setpriv --reuid=postgres --regid=postgres --init-groups -- "$@")
    else
        (cd / && su -s /bin/sh postgres -c "$(printf '%q ' "$@")")
    fi
}

# True if something accepts TCP connections on 127.0.0.1:$1.
sluice_port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Prints the first port from $1 upwards that nothing listens on.
sluice_first_free_port() {
    local port="$1"
    while sluice_port_in_use "$port"; do
        port=$((port + 1))
    done
    echo "$port"
}

# A local Python venv (.local/venv) with the client drivers the driver tests
# use (psycopg 3, binary wheel); exports SLUICE_PYTHON. Does nothing (with a
# note) when python3 has no venv module.
sluice_ensure_python_drivers() {
    local venv="$SLUICE_ROOT/.local/venv"
    if ! "$venv/bin/python" -c 'import psycopg' >/dev/null 2>&1; then
        if ! command -v python3 >/dev/null 2>&1 || ! python3 -m venv --help >/dev/null 2>&1; then
            sluice_say "python3 with venv not found: the psycopg driver tests will be skipped"
            return 0
        fi
        sluice_say "installing psycopg[binary] into $venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check "psycopg[binary]>=3.1,<4"
    fi
    export SLUICE_PYTHON="$venv/bin/python"
}

# node-postgres (pg@8) from npm into .local/node; exports SLUICE_NODE_PATH
# (for NODE_PATH). Does nothing (with a note) without node and npm.
sluice_ensure_node_drivers() {
    local dir="$SLUICE_ROOT/.local/node"
    if [ ! -d "$dir/node_modules/pg" ]; then
        if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
            sluice_say "node/npm not found: the node-postgres and Prisma driver tests will be skipped"
            return 0
        fi
        sluice_say "installing pg@8 (node-postgres) into $dir"
        mkdir -p "$dir"
        (cd "$dir" && npm install --silent --no-audit --no-fund --no-save pg@8 >/dev/null)
    fi
    export SLUICE_NODE_PATH="$dir/node_modules"
    sluice_ensure_prisma
}

# Prisma 7 from npm into .local/prisma (prisma, @prisma/client,
# @prisma/adapter-pg, and tsx to run the generated TypeScript client), then
# the client generated there from tests/drivers/prisma/schema.prisma, offline
# (no schema engine: the test creates its table with SQL). Exports
# SLUICE_PRISMA_DIR. Skips what is already done (regenerates when the schema
# changed); does nothing (with a note) without node and npm.
sluice_ensure_prisma() {
    local dir="$SLUICE_ROOT/.local/prisma" schema="$SLUICE_ROOT/tests/drivers/prisma/schema.prisma"
    local -a offline=(env PRISMA_SCHEMA_ENGINE_BINARY=/bin/false PRISMA_HIDE_UPDATE_MESSAGE=1
        CHECKPOINT_DISABLE=1 PRISMA_SKIP_POSTINSTALL_GENERATE=1)
    if [ ! -x "$dir/node_modules/.bin/tsx" ] || [ ! -x "$dir/node_modules/.bin/prisma" ] ||
        [ ! -d "$dir/node_modules/@prisma/adapter-pg" ] || [ ! -d "$dir/node_modules/@prisma/client" ]; then
        if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
            sluice_say "node/npm not found: the Prisma driver test will be skipped"
            return 0
        fi
        sluice_say "installing prisma@7, @prisma/client@7, @prisma/adapter-pg@7 and tsx@4 into $dir"
        mkdir -p "$dir"
        # ESM: the generated client uses import.meta.
        printf '{ "private": true, "type": "module" }\n' >"$dir/package.json"
        # --ignore-scripts: @prisma/engines' postinstall would download engines.
        if ! (cd "$dir" && "${offline[@]}" npm install --silent --no-audit --no-fund --ignore-scripts \
            prisma@7 @prisma/client@7 @prisma/adapter-pg@7 tsx@4 >/dev/null); then
            sluice_say "npm install of Prisma failed: the Prisma driver test will be skipped"
            return 0
        fi
    fi
    if [ ! -f "$dir/generated/client.ts" ] || ! cmp -s "$schema" "$dir/schema.prisma"; then
        sluice_say "generating the Prisma client in $dir/generated"
        rm -rf "$dir/generated" "$dir/schema.prisma"
        if ! (cd "$dir" && cp "$schema" schema.prisma &&
            "${offline[@]}" node_modules/.bin/prisma generate --schema schema.prisma >/dev/null); then
            rm -f "$dir/schema.prisma"
            sluice_say "prisma generate failed: the Prisma driver test will be skipped"
            return 0
        fi
    fi
    export SLUICE_PRISMA_DIR="$dir"
}

# spreaker's prometheus-pgbouncer-exporter 2.1.2 in its own venv
# (.local/exporter), for the exporter test. Its pin psycopg2==2.8.5 would
# need a source build, so psycopg2-binary provides the module and the
# exporter goes in with --no-deps next to its other pins. Exports
# SLUICE_PGBOUNCER_EXPORTER (the pgbouncer-exporter script). Does nothing
# (with a note) when python3 has no venv module or the install fails.
sluice_ensure_pgbouncer_exporter() {
    local venv="$SLUICE_ROOT/.local/exporter"
    local script="$venv/bin/pgbouncer-exporter"
    if [ ! -x "$script" ] ||
        ! "$venv/bin/python" -c 'import psycopg2, prometheus_client, pythonjsonlogger, yaml, prometheus_pgbouncer_exporter.cli' >/dev/null 2>&1; then
        if ! command -v python3 >/dev/null 2>&1 || ! python3 -m venv --help >/dev/null 2>&1; then
            sluice_say "python3 with venv not found: the pgbouncer-exporter test will be skipped"
            return 0
        fi
        sluice_say "installing prometheus-pgbouncer-exporter 2.1.2 into $venv"
        if ! python3 -m venv "$venv" ||
            ! "$venv/bin/pip" install -q --disable-pip-version-check psycopg2-binary \
                prometheus_client==0.8.0 python-json-logger==0.1.11 PyYAML ||
            ! "$venv/bin/pip" install -q --disable-pip-version-check --no-deps \
                prometheus-pgbouncer-exporter==2.1.2; then
            sluice_say "installing prometheus-pgbouncer-exporter failed: its test will be skipped"
            return 0
        fi
    fi
    export SLUICE_PGBOUNCER_EXPORTER="$script"
}

# Validates docker/docker-compose.yml with `docker-compose config` (no
# Docker engine needed), installing Debian's docker-compose package if it
# is missing; says so and goes on when it cannot be installed.
sluice_check_compose_file() {
    if ! command -v docker-compose >/dev/null 2>&1; then
        if ! (sluice_apt_install docker-compose) >/dev/null 2>&1; then
            sluice_say "docker-compose not installable here: docker/docker-compose.yml not checked"
            return 0
        fi
    fi
    sluice_say "==> docker-compose -f docker/docker-compose.yml config -q"
    docker-compose -f "$SLUICE_ROOT/docker/docker-compose.yml" config -q ||
        sluice_die "docker/docker-compose.yml is not a valid Compose file"
}

#!/usr/bin/env bash
# Make sure PostgreSQL's server binaries (initdb, pg_ctl, postgres) are installed, so that the
# test suite can start its own throwaway server (tests/pg.py).
#
#   bash scripts/ensure-postgres.sh
#
# Idempotent and quiet: exits 0 at once when the binaries are there. Otherwise, as root, installs
# Debian's `postgresql` package with apt-get and checks the result. Fails loudly (a message on
# stderr, exit status 1) when it cannot: not root, no apt-get, or the installation failed.
set -euo pipefail

have_server() {
    local name
    for name in initdb pg_ctl postgres; do
        command -v "$name" >/dev/null 2>&1 && continue
        compgen -G "/usr/lib/postgresql/*/bin/$name" >/dev/null && continue
        return 1
    done
}

fail() {
    echo "ensure-postgres: $*" >&2
    exit 1
}

have_server && exit 0

[ "$(id -u)" -eq 0 ] || fail "PostgreSQL's server binaries (initdb, pg_ctl, postgres) are missing; run this as root \
to install them with apt-get (sudo bash scripts/ensure-postgres.sh), or install PostgreSQL yourself"
command -v apt-get >/dev/null 2>&1 || fail "PostgreSQL's server binaries are missing and there is no apt-get here; \
install PostgreSQL (initdb, pg_ctl, postgres) with this system's package manager"

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -q && apt-get install -y -q --no-install-recommends postgresql; } >"$log" 2>&1; then
    cat "$log" >&2
    fail "apt-get could not install postgresql (output above)"
fi
have_server || fail "apt-get installed postgresql, but initdb, pg_ctl and postgres are still not to be found"
id postgres >/dev/null 2>&1 || fail "postgresql is installed but there is no 'postgres' system user to run the test server as"

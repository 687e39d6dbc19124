#!/usr/bin/env bash
# Make sure bubblewrap (bwrap) is installed and can create its namespaces, so that the sandboxed
# Python tool (tether.tools.create_python_tool) and its tests can run.
#
#   bash scripts/ensure-sandbox.sh
#
# Idempotent and quiet: exits 0 at once when bwrap is there and works. Otherwise, as root, installs
# Debian's `bubblewrap` package with apt-get and checks the result. Fails loudly (a message on
# stderr, exit status 1) when it cannot: not root, no apt-get, the installation failed, or the
# kernel refuses the namespaces bwrap needs.
set -euo pipefail

fail() {
    echo "ensure-sandbox: $*" >&2
    exit 1
}

works() {
    bwrap --unshare-all --unshare-user --die-with-parent --new-session --ro-bind / / \
        --proc /proc --dev /dev -- /bin/true >/dev/null 2>&1
}

if ! command -v bwrap >/dev/null 2>&1; then
    [ "$(id -u)" -eq 0 ] || fail "bubblewrap (bwrap) is missing; run this as root to install it with apt-get \
(sudo bash scripts/ensure-sandbox.sh), or install bubblewrap yourself"
    command -v apt-get >/dev/null 2>&1 || fail "bubblewrap (bwrap) is missing and there is no apt-get here; \
install bubblewrap with this system's package manager"
    log="$(mktemp)"
    trap 'rm -f "$log"' EXIT
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -q && apt-get install -y -q --no-install-recommends bubblewrap; } >"$log" 2>&1; then
        cat "$log" >&2
        fail "apt-get could not install bubblewrap (output above)"
    fi
    command -v bwrap >/dev/null 2>&1 || fail "apt-get installed bubblewrap, but bwrap is still not on PATH"
fi
works || fail "bwrap is installed but cannot create its namespaces here: enable user namespaces \
(sysctl user.max_user_namespaces > 0; kernel.unprivileged_userns_clone=1 on older Debian; on Ubuntu 24.04+ \
allow bwrap in AppArmor), or run the tests where they are allowed"

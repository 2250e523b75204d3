# Sourced by scripts/serve and scripts/test: create .venv and install the package into it, but only when
# pyproject.toml changed since the last install (or extras are asked for that the last install lacks), so
# that starting is fast. An install with the dev extras serves `./scripts/serve` as it is.
ensure_venv() {
    local extras="$1" stamp hash have
    hash="$(sha256sum pyproject.toml | cut -c1-16)"
    stamp=.venv/.pygarm-installed
    [ -x .venv/bin/python ] || python3 -m venv .venv
    have="$(cat "$stamp" 2>/dev/null || true)"
    if [ "$have" = "$hash-${extras:-none}" ] || { [ -z "$extras" ] && [ "${have%%-*}" = "$hash" ]; }; then
        return 0
    fi
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
    echo "$hash-${extras:-none}" > "$stamp"
}

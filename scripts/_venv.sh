# Sourced by scripts/serve and scripts/test: create .venv and install the package into it, but only when
# pyproject.toml (or the requested extras) changed since the last install, so that starting is fast.
ensure_venv() {
    local extras="$1" stamp want
    want="$(sha256sum pyproject.toml | cut -c1-16)-${extras:-none}"
    stamp=.venv/.pygarm-installed
    [ -x .venv/bin/python ] || python3 -m venv .venv
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        .venv/bin/python -m pip install --quiet --upgrade pip
        .venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
        echo "$want" > "$stamp"
    fi
}

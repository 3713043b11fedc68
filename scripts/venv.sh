# Sourced by scripts/serve and scripts/test: the checkout's own .venv, made with a Python >= 3.11.
# Everything is installed there, never into the system's Python (which Debian and Ubuntu refuse:
# "externally-managed-environment") nor into the user's global interpreter.

find_python() {
    local candidate
    for candidate in ${PYTHON:-python3.13 python3.12 python3.11 python3}; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "glm-mcp needs Python 3.11 or later; none found (set PYTHON=/path/to/python3.11 or newer)" >&2
    return 1
}

make_venv() {
    [ -x .venv/bin/python ] && return 0
    local python
    python=$(find_python) || return 1
    if ! "$python" -m venv .venv >/dev/null; then
        rm -rf .venv
        echo "'$python -m venv' failed; on Debian or Ubuntu: sudo apt install python3-venv, then run this again" >&2
        return 1
    fi
}

# Sourced by ./run and ./test: create .venv and install pinned requirements when they change.
# Usage: ensure_venv requirements.txt [requirements-dev.txt]
ensure_venv() {
  local py=${PYTHON:-python3} file want stamp
  [ -x .venv/bin/python ] || "$py" -m venv .venv
  for file in "$@"; do
    stamp=".venv/.$(basename "$file").sha"
    want=$(sha256sum "$file" | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
      echo "installing $file into .venv ..." >&2
      .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$file"
      echo "$want" > "$stamp"
    fi
  done
}

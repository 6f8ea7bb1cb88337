# Sourced by the scripts: sets UV to a working uv command, installing uv with pip if needed.
if command -v uv >/dev/null 2>&1; then
  UV=(uv)
else
  python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check "uv>=0.9"
  UV=(python3 -m uv)
fi

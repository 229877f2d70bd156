#!/usr/bin/env bash
# Install the official Dapr SDKs that the wire-compatibility tests drive (tests/sdk/) into
# .test-env/ (git-ignored). Idempotent: quick when the pinned versions are already there.
#
#   scripts/install-sdks.sh            # Python dapr[grpc]==1.19.0 and npm @dapr/dapr@3.18.0
set -euo pipefail

cd "$(dirname "$0")/.."
PY_VERSION="1.19.0"
JS_VERSION="3.18.0"
ENV_DIR=".test-env"

python_ok() {
    [ -x "$ENV_DIR/py/bin/python" ] &&
        "$ENV_DIR/py/bin/python" - "$PY_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
assert version("dapr") == sys.argv[1]
import dapr.clients, dapr.ext.grpc  # the [grpc] extra is present
PY
}

js_ok() {
    [ -f "$ENV_DIR/js/node_modules/@dapr/dapr/package.json" ] &&
        node -e 'const p=require(process.argv[1]); process.exit(p.version===process.argv[2]?0:1)' \
            "$PWD/$ENV_DIR/js/node_modules/@dapr/dapr/package.json" "$JS_VERSION"
}

if python_ok; then
    echo "python: dapr $PY_VERSION already installed in $ENV_DIR/py"
else
    echo "python: installing dapr[grpc]==$PY_VERSION into $ENV_DIR/py"
    python3 -m venv "$ENV_DIR/py"
    "$ENV_DIR/py/bin/pip" install --quiet --disable-pip-version-check "dapr[grpc]==$PY_VERSION"
    python_ok || { echo "python: dapr $PY_VERSION did not install cleanly" >&2; exit 1; }
fi

if js_ok; then
    echo "js: @dapr/dapr $JS_VERSION already installed in $ENV_DIR/js"
else
    echo "js: installing @dapr/dapr@$JS_VERSION into $ENV_DIR/js"
    mkdir -p "$ENV_DIR/js"
    npm install --silent --no-audit --no-fund --prefix "$ENV_DIR/js" "@dapr/dapr@$JS_VERSION"
    js_ok || { echo "js: @dapr/dapr $JS_VERSION did not install cleanly" >&2; exit 1; }
fi

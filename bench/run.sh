#!/usr/bin/env bash
# `make bench`: runs every lhttp-bench scenario against lhttpd and against nginx+Nchan, one server at a
# time on the same machine, and prints one table. The server is pinned to one core and the load generator
# to another (taskset), so the comparison is fair on a 2-core machine. Every process started here is
# stopped here, by PID. Results: bench/results/<stamp>.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
BENCH=.build/release/lhttp-bench
LHTTPD=${LHTTPD:-.build/release/lhttpd}
NGINX=${NGINX:-/usr/sbin/nginx}
NATS=${NATS:-$(command -v nats-server || echo /usr/sbin/nats-server)}
# QUICK=1: small counts, for trying the pipeline (numbers not comparable to the targets).
QUICK=${QUICK:-0}
# DIALECTS="lhttp" or "nchan" runs one side only; ONLY=<scenario name> runs one scenario
# (ONLY=fanout-cluster: the cluster mode alone, with its single-node peers).
DIALECTS=${DIALECTS:-lhttp nchan}
ONLY=${ONLY:-}

ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p bench/results
out="bench/results/$stamp.jsonl"
work=$(mktemp -d)
server_pid=""
# Cluster mode: the second lhttpd node and the nats-server.
extra_pids=()

stop_pid() {
    kill "$1" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

stop_server() {
    if [ -n "$server_pid" ]; then
        stop_pid "$server_pid"
        server_pid=""
    fi
    for pid in "${extra_pids[@]}"; do stop_pid "$pid"; done
    extra_pids=()
}
trap 'stop_server; rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "server on port $1 did not start" >&2
    return 1
}

start_server() {  # $1 = lhttp | nchan; sets server_pid and port (and backend_port for lhttpd)
    port=$(free_port)
    if [ "$1" = lhttp ]; then
        # The upstream scenario's backend (run by lhttp-bench) must be allowed.
        backend_port=$(free_port)
        # Per-connection rate limits off: one load generator connection stands for many publishers.
        printf 'limits:\n  max_messages_per_second: 0\n  max_bytes_per_second: 0\nupstream:\n  allow: ["http://127.0.0.1:%s/"]\n  max_in_flight: 256\n  max_in_flight_per_connection: 1024\nroutes:\n  hook: {url: "http://127.0.0.1:%s/hook"}\n' \
            "$backend_port" "$backend_port" > "$work/lhttpd.yaml"
        taskset -c "$SERVER_CPU" "$LHTTPD" --config "$work/lhttpd.yaml" --listen "127.0.0.1:$port" --threads 1 \
            2>>"$work/lhttpd.log" &
    else
        sed -e "s|@DIR@|$work|g" -e "s|@PORT@|$port|g" bench/nginx.conf.template > "$work/nginx.conf"
        taskset -c "$SERVER_CPU" "$NGINX" -p "$work" -c "$work/nginx.conf" 2>>"$work/nginx.log" &
    fi
    server_pid=$!
    wait_port "$port"
}

# One fresh server per scenario, so no scenario inherits another's memory or buffers.
run() {  # $1 = dialect, rest = scenario arguments
    local dialect=$1
    shift
    start_server "$dialect"
    local extra=()
    [ "$1" = idle-conns ] || [ "$1" = soak ] && extra=(--server-pid "$server_pid")
    [ "$1" = upstream ] || [ "$1" = webhook ] && extra=(--backend-port "$backend_port")
    taskset -c "$LOAD_CPU" "$BENCH" "$@" --dialect "$dialect" --port "$port" "${extra[@]}" >>"$out" \
        || echo "  ($dialect $1 reported a failure: see the line above)" >&2
    stop_server
}

# Cluster mode: nats-server and two lhttpd nodes (all on the server CPU, one thread each), the publisher
# on node A, subscribers alternating between A and B. Compared with the single-node fan-out of this run.
run_cluster() {  # rest = fanout arguments
    local nats_port port_b
    nats_port=$(free_port)
    taskset -c "$SERVER_CPU" "$NATS" -a 127.0.0.1 -p "$nats_port" 2>>"$work/nats.log" &
    extra_pids+=($!)
    wait_port "$nats_port"
    for node in a b; do
        printf 'limits:\n  max_messages_per_second: 0\n  max_bytes_per_second: 0\ncluster:\n  nats: ["nats://127.0.0.1:%s"]\n  node_id: %s\n' "$nats_port" "$node" > "$work/lhttpd-$node.yaml"
    done
    port=$(free_port)
    port_b=$(free_port)
    taskset -c "$SERVER_CPU" "$LHTTPD" --config "$work/lhttpd-a.yaml" --listen "127.0.0.1:$port" --threads 1 2>>"$work/lhttpd.log" &
    server_pid=$!
    taskset -c "$SERVER_CPU" "$LHTTPD" --config "$work/lhttpd-b.yaml" --listen "127.0.0.1:$port_b" --threads 1 2>>"$work/lhttpd.log" &
    extra_pids+=($!)
    wait_port "$port"
    wait_port "$port_b"
    taskset -c "$LOAD_CPU" "$BENCH" fanout "$@" --dialect lhttp --port "$port" --subscriber-port "$port" --subscriber-port "$port_b" >>"$out" \
        || echo "  (lhttp fanout-cluster reported a failure: see the line above)" >&2
    stop_server
}

if [ "$QUICK" = 1 ]; then
    scenarios=(
        "fanout --subscribers 20 --messages 500 --window 16"
        "fanout --subscribers 100 --messages 100 --window 1"
        "publish-rps --workers 8 --requests 2000 --subscribers 0"
        "publish-rps --workers 8 --requests 1000 --subscribers 10"
        "seed --messages 2000"
        "idle-conns --connections 500"
        "upstream --messages 500 --in-flight 8"
        "webhook --messages 500 --in-flight 8"
        "soak --connections 500 --channels 20 --seconds 5 --rate 200 --churn 10 --stalled 2"
    )
    cluster_scenarios=("--subscribers 20 --messages 500 --window 16")
else
    scenarios=(
        "fanout --subscribers 100 --messages 10000 --window 256"
        "fanout --subscribers 1000 --messages 2000 --window 256"
        "fanout --subscribers 100 --messages 10000 --window 64"
        "fanout --subscribers 1000 --messages 500 --window 1"
        "publish-rps --workers 32 --requests 100000 --subscribers 0"
        "publish-rps --workers 32 --requests 50000 --subscribers 10"
        "seed --messages 10000"
        "idle-conns --connections 5000"
        "upstream --messages 20000 --in-flight 1"
        "upstream --messages 20000 --in-flight 8"
        "upstream --messages 20000 --in-flight 64"
        "webhook --messages 20000 --in-flight 1"
        "webhook --messages 20000 --in-flight 8"
        "soak --connections 10000 --channels 100 --seconds 30 --rate 500 --churn 20 --stalled 10"
    )
    cluster_scenarios=(
        "--subscribers 100 --messages 10000 --window 256"
        "--subscribers 1000 --messages 2000 --window 256"
        "--subscribers 1000 --messages 500 --window 1"
    )
fi

echo "lhttp-bench: server pinned to CPU $SERVER_CPU, load generator to CPU $LOAD_CPU (taskset); lhttpd --threads 1, nginx worker_processes 1" >&2
for scenario in "${scenarios[@]}"; do
    [ -n "$ONLY" ] && [ "${scenario%% *}" != "$ONLY" ] && continue
    for dialect in $DIALECTS; do
        # Nchan has no upstream: that scenario compares lhttpd with calling the backend directly.
        case "${scenario%% *}" in upstream | webhook | soak) [ "$dialect" != lhttp ] && continue ;; esac
        # shellcheck disable=SC2086
        run "$dialect" $scenario
    done
done

if [ -z "$ONLY" ] || [ "$ONLY" = fanout-cluster ]; then
    if [ ! -x "$NATS" ]; then
        echo "nats-server not found: make bench installs it (the cluster mode needs it)" >&2
        exit 1
    fi
    for scenario in "${cluster_scenarios[@]}"; do
        # The single-node peer, unless the main loop above already measured it.
        # shellcheck disable=SC2086
        [ "$ONLY" = fanout-cluster ] && run lhttp fanout $scenario
        # shellcheck disable=SC2086
        run_cluster $scenario
    done
fi

echo
echo "lhttpd vs nginx+Nchan — same machine, same run ($stamp); server on CPU $SERVER_CPU, load on CPU $LOAD_CPU"
"$BENCH" report "$out"
echo
echo "results: $out"

#!/usr/bin/env bash
# `make bench`: runs every lhttp-bench scenario against lhttpd, nginx+Nchan and (websocket fan-out only)
# nats-server, one server at a time on the same machine, and prints one table and a chart. The server is
# pinned to one core and the load generator to another (taskset), so the comparison is fair on a 2-core
# machine; the "unpinned" rows run lhttpd with a loop per core and nothing pinned. Every process started
# here is stopped here, by PID. Results: bench/results/<stamp>.jsonl and <stamp>.png (and bench/latest.png).
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
# DIALECTS="lhttp" (or any subset of "lhttp nchan nats") runs those servers only; ONLY=<scenario name> runs
# one scenario (ONLY=fanout-cluster: the cluster mode alone, with its single-node peers).
DIALECTS=${DIALECTS:-lhttp nchan nats}
ONLY=${ONLY:-}
# The churn rows' token secret: lhttpd's auth.jwt.hmac_secret, and the bench signs each worker's token with it.
jwt_secret=$(python3 -c 'import secrets; print(secrets.token_hex(32))')

ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p bench/results
out="bench/results/$stamp.jsonl"
work=$(mktemp -d)
server_pid=""
# Cluster mode: the second lhttpd node and the nats-server.
extra_pids=()
# Where the server and the load generator run: "taskset -c N", or nothing for an unpinned run.
server_pin=(taskset -c "$SERVER_CPU")
load_pin=(taskset -c "$LOAD_CPU")

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

start_server() {  # $1 = lhttp | nchan | nats, $2 = pinned | unpinned | presence, $3 = scenario; sets server_pid and port (and backend_port for lhttpd)
    port=$(free_port)
    if [ "$2" = unpinned ]; then server_pin=(); else server_pin=(taskset -c "$SERVER_CPU"); fi
    case "$1" in
    lhttp)
        # The upstream scenario's backend (run by lhttp-bench) must be allowed.
        backend_port=$(free_port)
        # Per-connection rate limits off: one load generator connection stands for many publishers.
        # hist-* keeps history (the "history=100" rows); every other channel none, as by default.
        printf 'limits:\n  max_messages_per_second: 0\n  max_bytes_per_second: 0\nupstream:\n  allow: ["http://127.0.0.1:%s/"]\n  max_in_flight: 256\n  max_in_flight_per_connection: 1024\nroutes:\n  hook: {url: "http://127.0.0.1:%s/hook"}\nchannels:\n  - prefix: "hist-"\n    history_size: 100\n' \
            "$backend_port" "$backend_port" > "$work/lhttpd.yaml"
        # The churn rows: tokens verified on every upgrade (both rows); the "presence" one keeps presence on the
        # rooms and tells their subscribers every join and leave at once (no grace, so each cycle is both).
        # Logging from level error: each cycle's round trip is a deliberate LHTTP/9.9 message, which lhttpd
        # logs as a rejected message (a warning line per cycle, thousands a second) where a real client logs none.
        # The proxy rows: lhttpd's reverse proxy in front of the bench's backend (started by run, on
        # $proxy_backend_port), nothing else: no static_dir lookup before proxying, "/" not a websocket path.
        [ "$3" = proxy ] && printf 'websocket:\n  paths: ["/ws"]\nstatic_dir: ""\nproxy:\n  backend: "http://127.0.0.1:%s"\n' \
            "$proxy_backend_port" > "$work/lhttpd.yaml"
        if [ "$3" = churn ]; then
            [ "$2" = presence ] && printf '  - prefix: "room-"\n    presence: true\n    join_leave: true\n    leave_grace_s: 0\n' >> "$work/lhttpd.yaml"
            printf 'auth:\n  jwt:\n    hmac_secret: "%s"\nlog:\n  level: error\n' "$jwt_secret" >> "$work/lhttpd.yaml"
        fi
        # Pinned: one event loop on the server's core. Unpinned: lhttpd's default, a loop per core.
        local threads=(--threads 1)
        [ "$2" = unpinned ] && threads=()
        "${server_pin[@]}" "$LHTTPD" --config "$work/lhttpd.yaml" --listen "127.0.0.1:$port" "${threads[@]}" \
            2>>"$work/lhttpd.log" &
        ;;
    nchan)
        # The proxy rows: plain nginx proxy_pass (no Nchan) to the same backend as lhttpd's row.
        if [ "$3" = proxy ]; then
            sed -e "s|@DIR@|$work|g" -e "s|@PORT@|$port|g" -e "s|@BACKEND_PORT@|$proxy_backend_port|g" \
                bench/nginx-proxy.conf.template > "$work/nginx.conf"
        else
            sed -e "s|@DIR@|$work|g" -e "s|@PORT@|$port|g" bench/nginx.conf.template > "$work/nginx.conf"
        fi
        "${server_pin[@]}" "$NGINX" -p "$work" -c "$work/nginx.conf" 2>>"$work/nginx.log" &
        ;;
    nats)
        # The bench talks to the websocket listener ($port); the client port is required but unused.
        printf 'websocket {\n  host: 127.0.0.1\n  port: %s\n  no_tls: true\n}\n' "$port" > "$work/nats.conf"
        "${server_pin[@]}" "$NATS" -c "$work/nats.conf" -a 127.0.0.1 -p "$(free_port)" 2>>"$work/nats.log" &
        ;;
    esac
    server_pid=$!
    wait_port "$port"
}

# One fresh server per scenario, so no scenario inherits another's memory or buffers.
run() {  # $1 = dialect, $2 = pinned | unpinned | presence (pinned, lhttpd with presence), rest = scenario arguments
    local dialect=$1 pinning=$2
    shift 2
    local extra=()
    # The proxy rows: the backend (lhttp-bench backend, one loop) both proxies point at, on the load
    # generator's CPU, fresh for each row like the server; stopped with the server.
    if [ "$1" = proxy ]; then
        proxy_backend_port=$(free_port)
        local backend_pin=(taskset -c "$LOAD_CPU")
        [ "$pinning" = unpinned ] && backend_pin=()
        "${backend_pin[@]}" "$BENCH" backend --port "$proxy_backend_port" 2>>"$work/backend.log" &
        extra_pids+=($!)
        extra=(--backend-pid "$!")
        wait_port "$proxy_backend_port"
    fi
    start_server "$dialect" "$pinning" "$1"
    [ "$1" = idle-conns ] || [ "$1" = soak ] || [ "$1" = churn ] || [ "$1" = proxy ] && extra+=(--server-pid "$server_pid")
    [ "$1" = upstream ] || [ "$1" = webhook ] && extra=(--backend-port "$backend_port")
    [ "$1" = churn ] && extra+=(--jwt-secret "$jwt_secret")
    [ "$pinning" = presence ] && extra+=(--label presence=join_leave)
    if [ "$pinning" = unpinned ]; then
        load_pin=()
        extra+=(--label pinned=false)
    else
        load_pin=(taskset -c "$LOAD_CPU")
    fi
    "${load_pin[@]}" "$BENCH" "$@" --dialect "$dialect" --port "$port" "${extra[@]}" >>"$out" \
        || echo "  ($dialect $1 reported a failure: see the line above)" >&2
    stop_server
}

# Cluster mode: nats-server and two lhttpd nodes (all on the server CPU, one thread each), the publisher
# on node A, subscribers alternating between A and B. Compared with the single-node fan-out of this run.
run_cluster() {  # rest = fanout arguments
    local nats_port port_b
    nats_port=$(free_port)
    # JetStream on (file store in the work directory): hist-* channels keep history in the cluster's stream.
    rm -rf "$work/jetstream"
    taskset -c "$SERVER_CPU" "$NATS" -a 127.0.0.1 -p "$nats_port" -js -sd "$work/jetstream" 2>>"$work/nats.log" &
    extra_pids+=($!)
    wait_port "$nats_port"
    for node in a b; do
        printf 'limits:\n  max_messages_per_second: 0\n  max_bytes_per_second: 0\nchannels:\n  - prefix: "hist-"\n    history_size: 100\ncluster:\n  nats: ["nats://127.0.0.1:%s"]\n  node_id: %s\n' "$nats_port" "$node" > "$work/lhttpd-$node.yaml"
    done
    port=$(free_port)
    port_b=$(free_port)
    taskset -c "$SERVER_CPU" "$LHTTPD" --config "$work/lhttpd-a.yaml" --listen "127.0.0.1:$port" --threads 1 2>>"$work/lhttpd.log" &
    server_pid=$!
    taskset -c "$SERVER_CPU" "$LHTTPD" --config "$work/lhttpd-b.yaml" --listen "127.0.0.1:$port_b" --threads 1 2>>"$work/lhttpd.log" &
    extra_pids+=($!)
    wait_port "$port"
    wait_port "$port_b"
    # Both nodes linked and the history stream ready (/healthz "history":"ready"), up to 10 s.
    for _ in $(seq 100); do
        curl -s "http://127.0.0.1:$port/healthz" | grep -q '"history":"ready"' \
            && curl -s "http://127.0.0.1:$port_b/healthz" | grep -q '"history":"ready"' && break
        sleep 0.1
    done
    taskset -c "$LOAD_CPU" "$BENCH" fanout "$@" --dialect lhttp --port "$port" --subscriber-port "$port" --subscriber-port "$port_b" >>"$out" \
        || echo "  (lhttp fanout-cluster reported a failure: see the line above)" >&2
    stop_server
}

# Every scenario: "<servers>|<arguments>". <servers> are those it runs against (filtered by DIALECTS);
# "lhttp-unpinned" is lhttpd with a loop per core and neither side pinned; "lhttp-presence" is lhttpd (pinned)
# with presence and join/leave on the churn rows' rooms.
if [ "$QUICK" = 1 ]; then
    scenarios=(
        "lhttp nchan|fanout --subscribers 20 --messages 500 --window 16"
        "lhttp nchan|fanout --subscribers 20 --messages 500 --window 64 --publishers 4"
        "lhttp nchan nats|fanout --subscribers 20 --messages 500 --window 64 --publisher websocket"
        "lhttp nchan nats|fanout --subscribers 200 --messages 100 --window 64 --publisher websocket"
        "lhttp-unpinned|fanout --subscribers 20 --messages 500 --window 64 --publishers 4"
        "lhttp-unpinned|fanout --subscribers 200 --messages 100 --window 64 --publisher websocket"
        "lhttp nchan|fanout --subscribers 100 --messages 100 --window 1"
        "lhttp nchan|publish-rps --workers 8 --requests 2000 --subscribers 0"
        "lhttp nchan|publish-rps --workers 8 --requests 1000 --subscribers 10"
        "lhttp nchan|seed --messages 2000"
        "lhttp nchan|idle-conns --connections 500"
        "lhttp|upstream --messages 500 --in-flight 8"
        "lhttp|webhook --messages 500 --in-flight 8"
        "lhttp|soak --connections 500 --channels 20 --seconds 5 --rate 200 --churn 10 --stalled 2"
        "lhttp|fanout --subscribers 20 --messages 500 --window 64 --publishers 4 --channel hist-fanout --label history=100"
        "lhttp lhttp-presence|churn --workers 10 --connects 1000 --seconds 5 --rooms 5 --watchers 5"
        "lhttp nchan|proxy --connections 16 --seconds 2 --large-clients 2 --large-bytes 16777216 --large-rounds 1"
    )
    cluster_scenarios=(
        "--subscribers 20 --messages 500 --window 16"
        "--subscribers 20 --messages 500 --window 16 --publishers 4"
        "--subscribers 20 --messages 500 --window 16 --publishers 4 --channel hist-fanout --label history=100"
    )
else
    scenarios=(
        # Independent HTTP publishers (one POST in flight each, like PHP workers), then one websocket publisher.
        "lhttp nchan|fanout --subscribers 100 --messages 10000 --window 256 --publishers 4"
        "lhttp nchan|fanout --subscribers 1000 --messages 1500 --window 256 --publishers 4"
        "lhttp nchan nats|fanout --subscribers 100 --messages 30000 --window 200 --publisher websocket"
        "lhttp nchan nats|fanout --subscribers 1000 --messages 3000 --window 200 --publisher websocket"
        # The same as the first and fourth with lhttpd's default threads and nothing pinned.
        "lhttp-unpinned|fanout --subscribers 100 --messages 10000 --window 256 --publishers 4"
        "lhttp-unpinned|fanout --subscribers 1000 --messages 3000 --window 200 --publisher websocket"
        # One pipelining HTTP publisher (the mode of issues 3-13), and latency with one message in flight.
        "lhttp nchan|fanout --subscribers 1000 --messages 2000 --window 256"
        "lhttp nchan|fanout --subscribers 1000 --messages 500 --window 1"
        "lhttp nchan|publish-rps --workers 32 --requests 100000 --subscribers 0"
        "lhttp nchan|publish-rps --workers 32 --requests 50000 --subscribers 10"
        "lhttp nchan|seed --messages 10000"
        "lhttp nchan|idle-conns --connections 5000"
        "lhttp|upstream --messages 20000 --in-flight 1"
        "lhttp|upstream --messages 20000 --in-flight 8"
        "lhttp|upstream --messages 20000 --in-flight 64"
        "lhttp|webhook --messages 20000 --in-flight 1"
        "lhttp|webhook --messages 20000 --in-flight 8"
        "lhttp|soak --connections 10000 --channels 100 --seconds 30 --rate 500 --churn 20 --stalled 10"
        # Issue 15: the first and fourth fan-outs again, to a channel with history (stamped, kept, ordered).
        "lhttp|fanout --subscribers 100 --messages 10000 --window 256 --publishers 4 --channel hist-fanout --label history=100"
        "lhttp|fanout --subscribers 1000 --messages 3000 --window 200 --publisher websocket --channel hist-fanout --label history=100"
        # Issue 16: connect, subscribe, round trip, clean close, again (50 workers, each its own token user), with
        # 10 watchers in the rooms; lhttpd without presence, then with presence and join/leave on the rooms.
        "lhttp lhttp-presence|churn --workers 50 --connects 20000 --seconds 15 --rooms 10 --watchers 10"
        # Issue 17: lhttpd's reverse proxy against nginx proxy_pass (the "nchan" server: the same nginx, started
        # with bench/nginx-proxy.conf.template), both in front of lhttp-bench backend. 64 keep-alive clients each
        # GET a 100-byte answer and wait for it, 1 s warm-up then 10 s; then 4 clients download 256 MiB 3 times each.
        "lhttp nchan|proxy --connections 64 --seconds 10 --large-clients 4 --large-bytes 268435456 --large-rounds 3"
    )
    cluster_scenarios=(
        "--subscribers 1000 --messages 2000 --window 256"
        "--subscribers 1000 --messages 500 --window 1"
        # Issue 15: independent HTTP publishers (each waits for its answer, which with history comes after
        # JetStream's acknowledgement), history off and on in the cluster's JetStream stream.
        "--subscribers 1000 --messages 2000 --window 256 --publishers 4"
        "--subscribers 1000 --messages 2000 --window 256 --publishers 4 --channel hist-fanout --label history=100"
        "--subscribers 1000 --messages 500 --window 1 --channel hist-fanout --label history=100"
    )
fi

# The runs, in order: "<server> <pinned|unpinned> <arguments>" or "cluster - <fanout arguments>".
runs=()
for entry in "${scenarios[@]}"; do
    servers=${entry%%|*}
    scenario=${entry#*|}
    [ -n "$ONLY" ] && [ "${scenario%% *}" != "$ONLY" ] && continue
    for server in $servers; do
        case "$server" in
        *-unpinned) dialect=${server%-unpinned} pinning=unpinned ;;
        *-presence) dialect=${server%-presence} pinning=presence ;;
        *) dialect=$server pinning=pinned ;;
        esac
        case " $DIALECTS " in *" $dialect "*) ;; *) continue ;; esac
        runs+=("$dialect $pinning $scenario")
    done
done
if { [ -z "$ONLY" ] || [ "$ONLY" = fanout-cluster ]; } && [[ " $DIALECTS " == *" lhttp "* ]]; then
    for scenario in "${cluster_scenarios[@]}"; do
        # The single-node peer, unless the main loop above already measured it.
        [ "$ONLY" = fanout-cluster ] && runs+=("lhttp pinned fanout $scenario")
        runs+=("cluster - $scenario")
    done
fi
for item in "${runs[@]}"; do
    case "$item" in nats\ * | cluster\ *)
        if [ ! -x "$NATS" ]; then
            echo "nats-server not found: make bench installs it (the nats dialect and the cluster mode need it)" >&2
            exit 1
        fi ;;
    esac
done

echo "lhttp-bench: server pinned to CPU $SERVER_CPU, load generator to CPU $LOAD_CPU (taskset); lhttpd --threads 1, nginx worker_processes 1, nats-server (Go sizes GOMAXPROCS to the pinned CPU: 1); unpinned rows: lhttpd a loop per core, nothing pinned" >&2
started=$SECONDS
index=0
for item in "${runs[@]}"; do
    index=$((index + 1))
    read -r dialect pinning scenario <<<"$item"
    if [ "$dialect" = cluster ]; then
        echo "[$index/${#runs[@]}] fanout-cluster lhttp x2 + nats-server ${scenario#fanout } ($((SECONDS - started)) s)" >&2
        # shellcheck disable=SC2086
        run_cluster $scenario
    else
        label=$dialect
        [ "$pinning" = unpinned ] && label="$dialect (unpinned, loop per core)"
        [ "$pinning" = presence ] && label="$dialect (presence + join/leave on room-*)"
        echo "[$index/${#runs[@]}] ${scenario%% *} $label ${scenario#* } ($((SECONDS - started)) s)" >&2
        # shellcheck disable=SC2086
        run "$dialect" "$pinning" $scenario
    fi
done

echo
echo "lhttpd vs nginx+Nchan vs nats-server — same machine, same run ($stamp, $((SECONDS - started)) s); server on CPU $SERVER_CPU, load on CPU $LOAD_CPU"
chart=()
if command -v gnuplot >/dev/null; then
    chart=(--chart "bench/results/$stamp.png" --chart-title "fan-out deliveries/s, one server core each (unless unpinned), same run $stamp")
else
    echo "(gnuplot not found: no chart; make bench installs gnuplot-nox)" >&2
fi
"$BENCH" report "$out" "${chart[@]}"
if [ -f "bench/results/$stamp.png" ]; then
    cp "bench/results/$stamp.png" bench/latest.png
    echo "chart: bench/results/$stamp.png (copied to bench/latest.png)"
fi
echo
echo "results: $out"

#!/usr/bin/env bash
# Runs a single-node Apache Kafka broker in KRaft mode (combined controller + broker) on loopback ports, with its
# logs in a temporary folder, for tests and local runs. Jars come from fetch-kafka.sh (Maven Central, cached).
#
#   broker.sh start  [--port 19092] [--controller-port 19093] [--state-dir DIR]   prints the bootstrap address
#   broker.sh stop   [--state-dir DIR]                                            stops it and removes its logs
#   broker.sh status [--state-dir DIR]                                            exit 0 when running
#   KAFKA_JVM_OPTS overrides the JVM flags (default: -Xms256m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1)
#
# The state dir (default: <repo>/.cache/kafka-broker) holds the pid, server.properties and the broker's own log;
# the topic data lives in a fresh mktemp folder recorded there, removed by stop.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cmd="${1:-}"
shift || true
port=19092
controller_port=19093
state_dir="$here/../../.cache/kafka-broker"
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port="$2"; shift 2 ;;
    --controller-port) controller_port="$2"; shift 2 ;;
    --state-dir) state_dir="$2"; shift 2 ;;
    *) echo "broker.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
pid_file="$state_dir/broker.pid"

running() { [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; }

start() {
  if running; then
    echo "broker.sh: already running (pid $(cat "$pid_file")); stop it first" >&2
    exit 4
  fi
  command -v java >/dev/null 2>&1 || { echo "broker.sh: java not found (needs 17+)" >&2; exit 69; }
  local libs
  libs="$("$here/fetch-kafka.sh")"
  mkdir -p "$state_dir"
  state_dir="$(cd "$state_dir" && pwd)"
  pid_file="$state_dir/broker.pid"
  local data_dir
  data_dir="$(mktemp -d "${TMPDIR:-/tmp}/iommutrail-kafka.XXXXXX")"
  echo "$data_dir" > "$state_dir/data-dir"
  cat > "$state_dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$data_dir
# topics are created deliberately (create-topics.sh, the test helper), never by a typo
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
# one node: no reason to wait for more members or voters
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
controller.quorum.election.timeout.ms=300
controller.quorum.fetch.timeout.ms=600
controller.quorum.election.backoff.max.ms=200
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000
num.network.threads=2
num.io.threads=4
log.retention.check.interval.ms=300000
PROPS
  cat > "$state_dir/log4j.properties" <<LOG4J
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$state_dir/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.state.change.logger=WARN
LOG4J
  : > "$state_dir/server.log"
  # small heap, serial GC and C1 only: a test broker starts in ~3 s instead of ~5 s (override for benchmarks)
  local jvm_opts
  read -r -a jvm_opts <<< "${KAFKA_JVM_OPTS:--Xms256m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto}"
  local jvm=("${jvm_opts[@]}" -Djava.awt.headless=true "-Dlog4j.configuration=file:$state_dir/log4j.properties" -cp "$libs/*")
  local cluster_id
  # base64 of 16 random bytes with '+' and '/' mapped to letters: a url-safe id may start with '-', which
  # the storage tool's argument parser then reads as an option ("--cluster-id: expected one argument")
  cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' 'AB' | tr -d '=')"
  java "${jvm[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$state_dir/server.properties" >"$state_dir/format.log" 2>&1 \
    || { cat "$state_dir/format.log" >&2; rm -rf "$data_dir"; exit 1; }
  # setsid: the broker outlives this script and a Ctrl-C in the caller's terminal
  setsid java "${jvm[@]}" kafka.Kafka "$state_dir/server.properties" >"$state_dir/stdout.log" 2>&1 < /dev/null &
  echo $! > "$pid_file"
  local deadline=$((SECONDS + 60))
  until grep -q "Kafka Server started" "$state_dir/server.log" 2>/dev/null; do
    if ! running; then
      echo "broker.sh: broker exited during start; last lines:" >&2
      tail -n 30 "$state_dir/server.log" "$state_dir/stdout.log" >&2 || true
      rm -rf "$data_dir"
      exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "broker.sh: broker not started after 60 s" >&2
      stop
      exit 1
    fi
    sleep 0.1
  done
  echo "127.0.0.1:$port"
}

stop() {
  if running; then
    local pid
    pid="$(cat "$pid_file")"
    kill -TERM "$pid" 2>/dev/null || true
    # controlled shutdown takes a few seconds; a broker that hangs is killed
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "broker.sh: broker $pid ignored SIGTERM for 20 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pid_file"
  if [ -f "$state_dir/data-dir" ]; then
    rm -rf "$(cat "$state_dir/data-dir")"
    rm -f "$state_dir/data-dir"
  fi
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  status)
    if running; then echo "running (pid $(cat "$pid_file"))"; else echo "stopped"; exit 3; fi ;;
  *) echo "usage: broker.sh start|stop|status [--port N] [--controller-port N] [--state-dir DIR]" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Creates the iommutrail topics (idempotent: existing topics are left as they are) with Kafka's own kafka-topics
# tool (org.apache.kafka.tools.TopicCommand from the jars fetch-kafka.sh caches). See README.md for the numbers.
#   create-topics.sh --bootstrap HOST:PORT [--partitions 12] [--replication 3] [--retention-days 7] [--dlq-retention-days 30]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bootstrap=""
partitions=12
replication=3
retention_days=7
dlq_retention_days=30
topic="iommu.events"
dlq="iommu.events.dlq"
while [ $# -gt 0 ]; do
  case "$1" in
    --bootstrap) bootstrap="$2"; shift 2 ;;
    --partitions) partitions="$2"; shift 2 ;;
    --replication) replication="$2"; shift 2 ;;
    --retention-days) retention_days="$2"; shift 2 ;;
    --dlq-retention-days) dlq_retention_days="$2"; shift 2 ;;
    --topic) topic="$2"; dlq="$2.dlq"; shift 2 ;;
    *) echo "create-topics.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -n "$bootstrap" ] || { echo "create-topics.sh: --bootstrap HOST:PORT is required" >&2; exit 2; }
libs="$("$here/fetch-kafka.sh")"
# acks=all only protects data when a write needs two replicas: min ISR 2 from replication 3 on, 1 below
min_isr=$(( replication >= 3 ? 2 : 1 ))
day_ms=86400000
topics() { java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -cp "$libs/*" org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" "$@"; }

topics --create --if-not-exists --topic "$topic" --partitions "$partitions" --replication-factor "$replication" \
  --config "retention.ms=$(( retention_days * day_ms ))" --config "min.insync.replicas=$min_isr" \
  --config cleanup.policy=delete --config compression.type=producer --config max.message.bytes=1048576
# the DLQ is small and read by people: few partitions, kept longer
topics --create --if-not-exists --topic "$dlq" --partitions 1 --replication-factor "$replication" \
  --config "retention.ms=$(( dlq_retention_days * day_ms ))" --config "min.insync.replicas=$min_isr" --config cleanup.policy=delete
topics --describe --topic "$topic"
topics --describe --topic "$dlq"

#!/bin/bash
# usage: abx.sh A B  -> B/A rate ratio, A first and B first, and geometric mean
r1=$(A=$1 B=$2 node /tmp/f17/ab2.mjs A); r2=$(A=$1 B=$2 node /tmp/f17/ab2.mjs B)
echo "B/A: A-first $r1  B-first $r2  geomean $(node -e "console.log(Math.sqrt($r1*$r2).toFixed(3))")  load $(cut -d' ' -f1 /proc/loadavg)"

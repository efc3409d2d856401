#!/bin/bash
# ab.sh MODE KIND → prints "MODE KIND µs/req rps"
cd /tmp/prof
sed "s/19531/1960$3/" meter.toml > m$3.toml
TG_URING=$1 taskset -c 0 ./tg-exp serve --config m$3.toml > gw$3.out 2>&1 &
P=$!
until grep -q listening gw$3.out; do sleep 0.05; done
b=$(awk '{print $14+$15}' /proc/$P/stat)
out=$(BODY=req-$2.json taskset -c 1 wrk -t1 -c64 -d5s -s post.lua http://127.0.0.1:1960$3)
a=$(awk '{print $14+$15}' /proc/$P/stat)
n=$(echo "$out" | awk '/requests in/ {print $1}')
rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
kill $P; wait $P 2>/dev/null
echo "$1 $2 $(python3 -c "print(round(($a-$b)/100*1e6/$n,2))") $rps"

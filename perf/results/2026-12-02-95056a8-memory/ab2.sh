#!/bin/bash
# ab2.sh ENV KIND PORTSUFFIX
cd /tmp/prof
sed "s/19541/1970$3/" full.toml > f$3.toml
rm -rf ledger audit.jsonl*; mkdir ledger
env $1 taskset -c 0 ./tg-new serve --config f$3.toml > g$3.out 2>&1 &
P=$!
until grep -q listening g$3.out; do sleep 0.05; done
b=$(awk '{print $14+$15}' /proc/$P/stat)
out=$(BODY=req-$2.json taskset -c 1 wrk -t1 -c64 -d5s -s post.lua http://127.0.0.1:1970$3)
a=$(awk '{print $14+$15}' /proc/$P/stat)
n=$(echo "$out" | awk '/requests in/ {print $1}')
hwm=$(grep VmHWM /proc/$P/status | awk '{print $2}')
kill $P; wait $P 2>/dev/null
echo "$1 $2 $(python3 -c "print(round(($a-$b)/100*1e6/$n,2))") µs/req hwm=${hwm}kB"

#!/bin/bash
# The benchmark's exec probe: a TCP connect with bash's /dev/tcp (no extra process).
# Called vigil style: health-probe.sh ADDRESS PORT.
if { : 3<>"/dev/tcp/$1/$2"; } 2>/dev/null; then
  echo "OK $1:$2"
  exit 0
fi
echo "FAIL $1:$2"
exit 1

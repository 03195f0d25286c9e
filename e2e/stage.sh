#!/usr/bin/env bash
# stage.sh NAME COMMAND...: runs one step of `make test` and says how long it took.
name="$1"
shift
echo "== stage $name: started at $(date -u +%H:%M:%S)"
start=$SECONDS
"$@"
rc=$?
# Free disk with each stage: a full disk makes the test cluster's kubelet report DiskPressure.
echo "== stage $name: $((SECONDS - start))s (exit $rc; $(df -h --output=avail / 2>/dev/null | tail -1 | tr -d ' ') free on /)"
exit $rc

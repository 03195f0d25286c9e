#!/usr/bin/env bash
# stage.sh NAME COMMAND...: runs one step of `make test` and says how long it took.
name="$1"
shift
echo "== stage $name: started at $(date -u +%H:%M:%S)"
start=$SECONDS
"$@"
rc=$?
echo "== stage $name: $((SECONDS - start))s (exit $rc)"
exit $rc

# demo: the README's first command tells the whole story end to end (and exits, here).
# e2e-stage: kube-sim only: e2e/demo.sh starts its own kube-sim

bash "$E2E_DIR/demo.sh" --exit >"$SCENARIO_DIR/demo.out" 2>&1 || { tail -30 "$SCENARIO_DIR/demo.out" >&2; fail "e2e/demo.sh failed"; }
out="$(cat "$SCENARIO_DIR/demo.out")"
assert_contains "$out" "meeting notes" "the data is shown"
assert_eq 2 "$(grep -c '^meeting notes' "$SCENARIO_DIR/demo.out")" "the notes are printed before the disaster and after the restore"
assert_contains "$out" "restored snapshot" "the restore is narrated"
assert_contains "$out" "demo finished" "the demo ran to its end"

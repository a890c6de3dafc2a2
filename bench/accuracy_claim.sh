#!/usr/bin/env bash
# The accuracy claim, on tasks a small model can half-answer: qwen2.5-1.5b -> qwen2.5-0.5b
# (same family), the concept "correct vs wrong answer" of each task's dev split, arms
# baseline, native, transferred:<map> for each of MAPS, random, prompting (the SLM told
# "Answer correctly."), llm (ceiling), under all three scaling modes.
#
# The tasks are the ones bench/find_tasks.py put between 0.4 and 0.8 unsteered accuracy
# for qwen2.5-0.5b, with >= 200 test items. Heavy: hours on 2 CPU cores. One run per task
# scores every scaling mode (sharing the passes they have in common) and writes
# docs/results/claim-<task>/<scaling>/report.json and plots. Knobs (environment):
#   MAPS="ridge,procrustes,anchor"   the transfer maps (anchor: once steer_ui/transfer has it)
#   TASKS="repe_facts ..."           task files under assets/tasks/ (without .jsonl), or repe_facts
#   SCALINGS="dev-sweep,per-example,adaptive"
#   ITEMS=612 PAIRS=48 NEUTRAL=400   items per task at most (dev + test), contrast pairs, map texts
#   GRID=... ADAPTIVE_GRID=...       intensity grids (relative; adaptive, x ||h_t||)
#   QUICK=1                          one small configuration end-to-end (minutes, not hours)
#   ONLY="name ..."                  rerun only these runs
# docs/RESULTS.md section B ran TASKS=repe_facts ITEMS=420 GRID=-0.5,-0.25,0,0.25,0.5 and, for
# time, the adaptive mode as its own smaller run (native, ridge, random):
#   python -m steer_ui experiment --llm qwen2.5-1.5b --slm qwen2.5-0.5b --data <facts JSONL> --pairs dev \
#     --limit-items 420 --limit-pairs 48 --maps ridge --intensities=-0.5,-0.1,0,0.1,0.5 --scaling adaptive \
#     --out docs/results/claim-repe_facts-adaptive
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-docs/results}
LLM=${LLM:-qwen2.5-1.5b}
SLM=${SLM:-qwen2.5-0.5b}
MAPS=${MAPS:-ridge,procrustes,anchor}
TASKS=${TASKS:-repe_facts mixed_sentiment_ab}  # repe_facts: ../shared/data, read by path (skipped if absent)
SCALINGS=${SCALINGS:-dev-sweep,per-example,adaptive}
ITEMS=${ITEMS:-612} PAIRS=${PAIRS:-48} NEUTRAL=${NEUTRAL:-400}
GRID=${GRID:--1,-0.5,-0.25,0,0.25,0.5,1}
ADAPTIVE_GRID=${ADAPTIVE_GRID:--0.5,-0.1,0,0.1,0.5}  # per-token x ||h_t||: smaller numbers
ONLY=${ONLY:-}
if [ -n "${QUICK:-}" ]; then  # shows the pipeline works; its numbers are too few items to judge by
  TASKS=${QUICK_TASK:-negation_ab} SCALINGS=dev-sweep MAPS=${QUICK_MAPS:-ridge}
  ITEMS=40 PAIRS=16 NEUTRAL=48 GRID=-0.5,0,0.5 OUT=${OUT_QUICK:-/tmp/steer-ui-claim-quick}
fi

run() { name=$1; shift; [ -n "$ONLY" ] && [[ " $ONLY " != *" $name "* ]] && return 0; echo "== $name"
  $PY -m steer_ui experiment "$@" --out "$OUT/$name" 2>&1 | grep -v -iE "warn|loading|convert|writing"; }

data_for() {  # our sets from assets/tasks/; the public facts CSV converted to JSONL outside the repo
  if [ "$1" = repe_facts ]; then
    [ -f ../shared/data/repe/facts/facts_true_false.csv ] || return 1
    tmp=${TMPDIR:-/tmp}/steer-ui-repe_facts_ab.jsonl
    $PY bench/find_tasks.py --export "repe_facts=$tmp" >&2 && echo "$tmp"
  else
    echo "assets/tasks/$1.jsonl"
  fi
}

for task in $TASKS; do
  data=$(data_for "$task") || { echo "skipping $task: ../shared/data is absent"; continue; }
  run "claim-${task%_ab}" --llm "$LLM" --slm "$SLM" --data "$data" \
    --pairs dev --limit-items "$ITEMS" --limit-pairs "$PAIRS" --neutral "$NEUTRAL" --maps "$MAPS" \
    --intensities="$GRID" --adaptive-intensities="$ADAPTIVE_GRID" --scaling "$SCALINGS" --with-prompting --with-llm
done

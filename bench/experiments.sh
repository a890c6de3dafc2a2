#!/usr/bin/env bash
# The experiments behind docs/RESULTS.md. Slow on CPU (about 4 hours for all of it on
# 2 cores, two runs at a time with OMP_NUM_THREADS=1): each run writes
# docs/results/<name>/report.json and plots; ONLY="name ..." reruns some.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-docs/results}
CAA=../shared/data/caa
LLM=${LLM:-qwen2.5-1.5b}
SLM=${SLM:-smollm2-135m}
GRID="-1,-0.5,-0.25,0,0.25,0.5,1"
ONLY=${ONLY:-}  # space-separated run names to do (default: all)
run() { name=$1; shift; [ -n "$ONLY" ] && [[ " $ONLY " != *" $name "* ]] && return 0; echo "== $name"; $PY -m steer_ui experiment "$@" --out "$OUT/$name" 2>&1 | grep -v -iE "warn|loading|convert|writing"; }

# 0. Extraction time and separability profile of one preset in both default models.
[ -z "$ONLY" ] || [[ " $ONLY " == *" profile "* ]] && $PY bench/profile_plot.py --preset happy-sad --llm $LLM --slm $SLM 2>&1 | grep -v -iE "warn|loading"

# 1. Task accuracy on our own sets; the concept is "correct vs wrong answer" of the dev split.
TASK="--pairs dev --limit-items 200 --limit-pairs 48 --intensities=$GRID"
run sentiment-dev-sweep --llm $LLM --slm $SLM --data assets/tasks/sentiment_ab.jsonl $TASK --scaling dev-sweep
run truefalse-dev-sweep --llm $LLM --slm $SLM --data assets/tasks/truefalse_ab.jsonl $TASK --scaling dev-sweep --maps ridge
# 2. Open generation (the main evidence for transfer on the default pair).
run gen-happy-sad --llm $LLM --slm $SLM --pairs happy-sad --limit-pairs 32 --task generation --data assets/neutral_prompts.txt --intensities=-0.5,-0.25,0,0.25,0.5 --max-new-tokens 24
run gen-formal-casual --llm $LLM --slm $SLM --pairs formal-casual --limit-pairs 32 --task generation --data assets/neutral_prompts.txt --intensities=-0.5,-0.25,0,0.25,0.5 --max-new-tokens 24
# 2b. Issue 17: a third family (gemma3-270m, base model) with all three maps and the prompting arm.
for c in ${GEN3:-happy-sad}; do
  run gen-$c-gemma3 --llm $LLM --slm gemma3-270m --pairs $c --limit-pairs 32 --task generation --data assets/neutral_prompts.txt --intensities=-0.5,-0.25,0,0.25,0.5 --max-new-tokens 24 --maps ridge,procrustes,anchor --with-prompting --neutral ${NEUTRAL:-400}
done
# 2c. Issue 17: every preset into smollm2-135m with the three maps (family left out), random and prompting.
for c in ${GEN2:-happy-sad formal-casual confident-uncertain refuse-comply french-english optimistic-pessimistic polite-rude angry-calm verbose-terse honest-deceptive}; do
  run gen-$c-smollm2 --llm $LLM --slm smollm2-135m --pairs $c --limit-pairs 32 --task generation --data assets/neutral_prompts.txt --intensities=-0.5,-0.25,0,0.25,0.5 --max-new-tokens 24 --maps ridge,procrustes,anchor --with-prompting --neutral ${NEUTRAL:-400}
done
# 3. Inference-time scaling modes on the sentiment task.
run sentiment-per-example --llm $LLM --slm $SLM --data assets/tasks/sentiment_ab.jsonl $TASK --scaling per-example --maps ridge
run sentiment-adaptive --llm $LLM --slm $SLM --data assets/tasks/sentiment_ab.jsonl --pairs dev --limit-items 200 --limit-pairs 48 --intensities=-0.5,-0.1,0,0.1,0.5 --scaling adaptive --maps ridge
# 4. How the result changes with the SLM layer (the default is the native vector's best layer).
for L in ${LAYERS:-8 22}; do
  run sentiment-layer$L --llm $LLM --slm $SLM --data assets/tasks/sentiment_ab.jsonl --pairs dev --limit-items 100 --limit-pairs 48 --intensities=-1,-0.5,0,0.5,1 --layer $L --maps ridge
done
# 5. CAA behaviours (skipped when ../shared/data is absent): extract from generate/, test on test/.
if [ -d "$CAA" ]; then
  for b in sycophancy refusal corrigible-neutral-HHH; do
    run caa-$b --llm $LLM --slm $SLM --pairs $CAA/generate/$b/generate_dataset.json --limit-pairs 48 --data $CAA/test/$b/test_dataset_ab.json --intensities=-1,-0.5,0,0.5,1 --maps ridge
  done
fi
# 6. Same-family pair.
run samefamily-sentiment --llm $LLM --slm qwen2.5-0.5b --data assets/tasks/sentiment_ab.jsonl --pairs dev --limit-items 80 --limit-pairs 48 --intensities=-1,-0.5,0,0.5,1 --maps ridge

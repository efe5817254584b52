#!/usr/bin/env bash
# The question-aware labelling and training run on the lent GPU machine (training/README.md).
# Expects, in $STAGE (default /root/g): gemma-3-270m-q4_k_m.gguf, qa_tokens.jsonl.gz,
# minilm_fp16/ (training.checkpoint shrink), the gguf wheel and student/tokenizer.json;
# this repository's code on PYTHONPATH.  Steps:
#   labels: Gemma log-probabilities with and without each question, then one label file per
#           gold-evidence weight in $GOLD
#   train:  one student per label file, trained side by side on the GPU
#   fetch G: copy the student trained with gold weight G to $OUT
#   support: the shipped mix (training.question_labels, "support"): expects rows*.jsonl.gz,
#           rows_eval.jsonl.gz (XQuAD evaluation questions, reported only) and default_fp16/
#           (the default's weights as shards) instead; targets from the default on the GPU,
#           then one student per variant in $VARIANTS, started from the default's weights; the
#           one with most whole answers kept at rate 0.33 on validation goes to $OUT
set -euo pipefail
STAGE=${STAGE:-/root/g}
GOLD=${GOLD:-"0 0.5"}
cd "$STAGE"
case "$1" in
  labels)
    python3 -m pip install -q --no-index --no-deps --target /tmp/site gguf-*.whl
    export PYTHONPATH=$PYTHONPATH:/tmp/site
    gunzip -kf qa_tokens.jsonl.gz
    python3 -m training.teacher_gpu gemma-3-270m-q4_k_m.gguf qa_tokens.jsonl logprobs.jsonl
    for g in $GOLD; do
      python3 -m training.question_labels finish qa_tokens.jsonl logprobs.jsonl \
        "labels_g$g.jsonl" --tokenizer student/tokenizer.json --gold "$g" &
    done
    wait
    wc -l labels_g*.jsonl ;;
  train)
    for g in $GOLD; do
      python3 -m training.train --labels "labels_g$g.jsonl" --base minilm_fp16 \
        --out "trained_g$g" --lr 1e-4 --epochs 3 --batch 32 --seed 0 > "train_g$g.log" 2>&1 &
    done
    wait
    tail -n 4 train_g*.log ;;
  fetch)
    cp "trained_g$2"/* "$OUT"/ ;;
  support)
    # VARIANTS: NAME:ROWS:WEIGHT:SENTENCE:LR[:EXTRA] ... (ROWS.jsonl.gz from `question_labels
    # support`; EXTRA: rows trained on and never validated on, e.g. training.cloze's)
    for f in rows*.jsonl.gz; do gunzip -kf "$f"; done
    python3 -m training.question_labels support-finish rows_eval.jsonl labels_eval.jsonl \
      --default default_fp16
    for v in $VARIANTS; do
      IFS=: read -r name rows weight sentence lr extra <<< "$v"
      python3 -m training.question_labels support-finish "$rows.jsonl" "labels_$name.jsonl" \
        --default default_fp16 --weight "$weight" --sentence "$sentence"
      more=()
      if [ -n "$extra" ]; then
        python3 -m training.question_labels support-finish "$extra.jsonl" \
          "labels_${name}_extra.jsonl" --default default_fp16 --weight "$weight" \
          --sentence "$sentence"
        more=(--extra "labels_${name}_extra.jsonl")
      fi
      python3 -m training.train --labels "labels_$name.jsonl" --base default_fp16 \
        --out "support_$name" --lr "$lr" --epochs "${EPOCHS:-8}" --batch 32 --seed 0 \
        --select answers_kept_0.33 --report labels_eval.jsonl "${more[@]}" \
        > "train_$name.log" 2>&1 &
    done
    wait
    best=$(python3 -c "import json,glob; print(max(glob.glob('support_*'), key=lambda d: json.load(open(d + '/train_summary.json'))['chosen']['answers_kept_0.33']))")
    echo "best: $best"
    cp "$best"/* "$OUT"/
    tail -n +1 train_*.log > "$OUT/train_logs.txt" ;;
esac

#!/usr/bin/env bash
# The question-aware labelling and training run on the lent GPU machine (training/README.md).
# Expects, in $STAGE (default /root/g): gemma-3-270m-q4_k_m.gguf, qa_tokens.jsonl.gz,
# minilm_fp16/ (training.checkpoint shrink), the gguf wheel and student/tokenizer.json;
# this repository's code on PYTHONPATH.  Steps:
#   labels: Gemma log-probabilities with and without each question, then one label file per
#           gold-evidence weight in $GOLD
#   train:  one student per label file, trained side by side on the GPU
#   fetch G: copy the student trained with gold weight G to $OUT
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
esac

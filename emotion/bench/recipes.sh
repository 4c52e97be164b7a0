#!/usr/bin/env bash
# Recipe table: subject k-fold cross-validation of every recipe, several seeds, on
#   (a) the SYNTHETIC default data and
#   (b) the real-face sample (AI Hub layout) at $SAMPLE, skipped cleanly when absent;
#   (c) transfer: models trained on the SYNTHETIC default (default recipe, with and without the
#       enrolled baseline), scored on every person of the real sample (data.split_strategy=none);
# then one comparison table (Markdown + JSON) per data set, with paired per-fold and pooled
# differences against experiment=seed_reference (or the BASELINE recipe), written to outputs/recipes/ and printed, and
# the brief table of docs/results.md (outputs/recipes/table_<tag>.md, emotion/bench/recipes_table.py).
#
#   bash emotion/bench/recipes.sh                                  # full settings (slow on CPU)
#   EPOCHS=5 SEEDS=1,2,3 FOLDS=3 REAL_EPOCHS=100 bash emotion/bench/recipes.sh   # reduced
#
# Knobs (environment variables):
#   EPOCHS        epochs of every synthetic recipe (unset: each recipe's own, 200 for
#                 seed_reference; then the `default` recipe, 60 epochs, is run too)
#   REAL_EPOCHS   epochs on the real sample (default 200, the reference's; it is tiny)
#   TRANSFER_EPOCHS  epochs of the synthetic models of (c) (default 60, the default recipe's);
#                 TRANSFER="" skips (c)
#   SEEDS         model seeds, comma-separated (default 1,2,3)
#   FOLDS         subject folds on synthetic (default 5); REAL_FOLDS on the sample (default 5;
#                 its 7 people leave no validation split: every training person trains)
#   SYNTH_RECIPES, REAL_RECIPES   space-separated subsets of the recipe names below ("" runs
#                 none and only rewrites the tables from the runs already there)
#   SAMPLE        the AI Hub-layout folder (default ../shared/data/aihub_sample, beside the clone)
#   THREADS       torch threads per process (default 1: faster on a shared, small CPU)
#   PYTHON        interpreter (default: python)
#   BASELINE      the recipe every row is paired against (default seed_reference). Any other
#                 value (BASELINE=default: issue 26's "today's default plus one change" rows)
#                 also runs `default` on the sample at REAL_EPOCHS like every row, so the pairing
#                 isolates the change, and pairs the *_enrolled rows against `default_enrolled`
#                 in a second table (real_sample_enrolled_<tag>) when that recipe ran
set -euo pipefail

PYTHON=${PYTHON:-python}
SEEDS=${SEEDS:-1,2,3}
FOLDS=${FOLDS:-5}
REAL_FOLDS=${REAL_FOLDS:-5}
REAL_EPOCHS=${REAL_EPOCHS:-200}
TRANSFER_EPOCHS=${TRANSFER_EPOCHS:-60}
TRANSFER_TAG="e${TRANSFER_EPOCHS}_s${SEEDS//,/-}"
SAMPLE=${SAMPLE:-../shared/data/aihub_sample}
export OMP_NUM_THREADS=${THREADS:-1} MKL_NUM_THREADS=${THREADS:-1}
OUT=outputs/recipes
TAG="e${EPOCHS:-own}_f${FOLDS}_s${SEEDS//,/-}"
RUNS="$OUT/runs/$TAG"

# name -> overrides on top of the common ones. Everything except `default`, `recommended` and
# the last block (today's default plus one change) is seed_reference plus one change, so each
# row isolates one option. `default` (no overrides:
# the defaults, which are seed_reference + aspect correction over 60 epochs) is the `aspect`
# row whenever the epochs are fixed (EPOCHS, and always on the real sample).
declare -A RECIPE=(
  [seed_reference]="experiment=seed_reference"
  [default]=""
  [recommended]="experiment=recommended"
  [aspect]="experiment=seed_reference data.aspect_correction=true"
  [procrustes]="experiment=seed_reference data.normalization=procrustes data.aspect_correction=true"
  [procrustes_rigid]="experiment=seed_reference data.normalization=procrustes_rigid data.aspect_correction=true"
  [enrolled]="experiment=seed_reference data.baseline=enrolled"
  [session]="experiment=seed_reference data.baseline=session"
  [enrolled_aspect]="experiment=seed_reference data.baseline=enrolled data.aspect_correction=true"
  [enrolled_both]="experiment=seed_reference data.baseline=enrolled data.baseline_features=both"
  [enrolled_k2]="experiment=seed_reference data.baseline=enrolled data.enroll_per_subject=2"
  [session_both]="experiment=seed_reference data.baseline=session data.baseline_features=both"
  [enrolled_resample]="experiment=seed_reference data.baseline=enrolled data.baseline_resample=true"
  [pose_aug]="experiment=seed_reference data.rotation_aug_deg=5 data.scale_aug_std=0.05"
  [ema]="experiment=seed_reference ema=on"
  [balanced]="experiment=seed_reference class_balance=loss_weights"
  # Today's default plus one change (issue 26 item 7), paired with BASELINE=default; no
  # experiment=seed_reference: its lr/weight_decay/label_smoothing would silently override the
  # linear preset's.
  [default_enrolled]="data.baseline=enrolled"
  [linear]="model=linear"
  [linear_enrolled]="model=linear data.baseline=enrolled"
  [blendshapes]="data.features=blendshapes"
  [blendshapes_enrolled]="data.features=blendshapes data.baseline=enrolled"
  [landmarks_blendshapes]="data.features=landmarks+blendshapes"
  [landmarks_blendshapes_enrolled]="data.features=landmarks+blendshapes data.baseline=enrolled"
  [pose]="data.normalization=pose"
  [pose_enrolled]="data.normalization=pose data.baseline=enrolled"
)
# `ensemble` (after seed_reference): per fold, the seed_reference runs of every seed averaged
# as one model by emotion-eval (emotion/inference/face_model.py); compared with one model's fold mean.
# `linear` (logistic regression) sits beside every comparison (issue 26 item 6).
DEFAULT_SYNTH="seed_reference enrolled session default ensemble recommended aspect procrustes procrustes_rigid pose_aug ema linear"
DEFAULT_REAL="seed_reference enrolled session enrolled_aspect default ensemble recommended aspect procrustes procrustes_rigid pose_aug ema balanced finetune linear linear_enrolled"
BASELINE=${BASELINE:-seed_reference}
# (c): "" skips it; any other value runs it.
TRANSFER=${TRANSFER-transfer}
SYNTH_RECIPES=${SYNTH_RECIPES-$DEFAULT_SYNTH}
REAL_RECIPES=${REAL_RECIPES-$DEFAULT_REAL}

fold_list() { seq -s, 0 $(($1 - 1)); }

# sweep <dir> <folds> <overrides...>: one Hydra multirun over folds x seeds into <dir>.
sweep() {
  local dir=$1 folds=$2
  shift 2
  $PYTHON -m emotion.training -m "$@" \
    data.split_strategy=kfold data.num_folds="$folds" data.fold="$(fold_list "$folds")" \
    seed="$SEEDS" progress_bar=none \
    hydra.sweep.dir="$dir" 'hydra.sweep.subdir=fold${data.fold}_seed${seed}'
}

# ensemble <dir> <folds>: per fold, <dir>/seed_reference's runs of all seeds as one model,
# scored by emotion-eval on that fold's test people into <dir>/ensemble/fold<k>/metrics.json.
ensemble() {
  local dir=$1 folds=$2
  for fold in $(seq 0 $(($folds - 1))); do
    $PYTHON -m emotion.evaluate.app "$dir/seed_reference/fold${fold}_seed*" \
      output_dir="$dir/ensemble/fold$fold" tensorboard=false bootstrap.resamples=200 >/dev/null
  done
}

# summarise <name> <dir> [<baseline> [<glob>]]: the comparison table of every recipe under <dir>
# (those whose name matches <glob>, default all), paired against <baseline> (default $BASELINE)
summarise() {
  local name=$1 dir=$2 baseline=${3:-$BASELINE} glob=${4:-*}
  local recipes=()
  for path in "$dir"/*/; do
    local recipe
    recipe=$(basename "$path")
    # `latest` (a link emotion-train leaves to the newest sweep) is no recipe of its own
    # shellcheck disable=SC2053
    if [ -d "$path" ] && [ ! -L "${path%/}" ] && [ "$recipe" != pretrain7 ] \
      && [[ $recipe == $glob ]]; then
      recipes+=("${path%/}")
    fi
  done
  if [ ${#recipes[@]} -eq 0 ]; then
    echo "nothing to summarise under $dir"
    return 0
  fi
  $PYTHON -m emotion.summary "${recipes[@]}" --compare --baseline "$baseline" \
    --metric test/bal_acc --format markdown --out "$OUT/$name.md" --json "$OUT/$name.json"
}

# brief <json>...: docs/results.md's table (emotion/bench/recipes_table.py) from this run's tables.
brief() {
  local tables=()
  for table in "$@"; do
    [ -f "${table#*=}" ] && tables+=("$table")
  done
  [ ${#tables[@]} -gt 0 ] || return 0
  $PYTHON -m emotion.bench.recipes_table "${tables[@]}" --out "$OUT/table_$TAG.md" >/dev/null
  echo "README table: $OUT/table_$TAG.md"
}

# The whole run is one function, read in full before it starts: bash reads a script as it goes,
# so editing this file during an hour-long run would otherwise change what the run does next.
main() {
  mkdir -p "$OUT"

  # (a) synthetic default --------------------------------------------------------------------
  for name in $SYNTH_RECIPES; do
    if [ "$name" = default ] && [ -n "${EPOCHS:-}" ]; then
      echo "skip default: with EPOCHS set it is \`aspect\` exactly (seed_reference's network and"
      echo "optimiser with data.aspect_correction=true; they differ only in epochs)"
      continue
    fi
    echo "== synthetic: $name"
    if [ "$name" = ensemble ]; then
      ensemble "$RUNS/synthetic" "$FOLDS"
      continue
    fi
    # shellcheck disable=SC2086
    sweep "$RUNS/synthetic/$name" "$FOLDS" ${RECIPE[$name]} ${EPOCHS:+trainer.max_epochs=$EPOCHS}
  done
  summarise "synthetic_$TAG" "$RUNS/synthetic"

  # (b) the real-face sample -----------------------------------------------------------------
  if [ ! -d "$SAMPLE" ]; then
    echo "no real-face sample at $SAMPLE: skipping (b)"
    brief "synthetic=$OUT/synthetic_$TAG.json"
    exit 0
  fi
  REAL_TAG="e${REAL_EPOCHS}_f${REAL_FOLDS}_s${SEEDS//,/-}"
  REAL_RUNS="$OUT/runs/$REAL_TAG/real_sample"
  BINARY=data/aihub_sample_binary.h5
  SEVEN=data/aihub_sample_seven.h5
  if [ -n "$REAL_RECIPES" ]; then
    mkdir -p "$(dirname "$BINARY")"
    [ -f "$BINARY" ] || $PYTHON -m emotion.extract.app source.root="$SAMPLE" output="$BINARY"
    # the seven-emotion store only for the pre-training of `finetune`
    if [[ " $REAL_RECIPES " == *" finetune "* ]] && [ ! -f "$SEVEN" ]; then
      $PYTHON -m emotion.extract.app source.root="$SAMPLE" classes=seven output="$SEVEN"
    fi
  fi
  # 7 people: too few to validate on (data.min_val_subjects), so every training person trains
  # and, with select=auto, the final epoch is tested.
  REAL=(data=store trainer.max_epochs="$REAL_EPOCHS")

  for name in $REAL_RECIPES; do
    echo "== real sample: $name"
    if [ "$name" = ensemble ]; then
      ensemble "$REAL_RUNS" "$REAL_FOLDS"
      continue
    fi
    if [ "$name" = finetune ]; then
      # Pre-train on the 7 emotions of the same people, same subject folds (the fine-tune
      # refuses a trunk whose pre-training saw its test people), then fine-tune each fold/seed.
      sweep "$REAL_RUNS/pretrain7" "$REAL_FOLDS" experiment=pretrain7 data.path="$SEVEN" \
        "${REAL[@]}"
      sweep "$REAL_RUNS/finetune" "$REAL_FOLDS" experiment=finetune_binary data.path="$BINARY" \
        "${REAL[@]}" freeze_trunk_epochs=10 \
        "init_from=$REAL_RUNS/pretrain7/fold\${data.fold}_seed\${seed}/checkpoints/last.ckpt"
      continue
    fi
    # the default recipe as a user gets it: its own epochs (unless it is the baseline)
    if [ "$name" = default ] && [ "$BASELINE" = seed_reference ]; then
      sweep "$REAL_RUNS/$name" "$REAL_FOLDS" data=store data.path="$BINARY"
      continue
    fi
    # shellcheck disable=SC2086
    sweep "$REAL_RUNS/$name" "$REAL_FOLDS" ${RECIPE[$name]} data.path="$BINARY" "${REAL[@]}"
  done
  summarise "real_sample_$REAL_TAG" "$REAL_RUNS"
  local enrolled=()
  if [ "$BASELINE" != seed_reference ] && [ -d "$REAL_RUNS/default_enrolled" ]; then
    summarise "real_sample_enrolled_$REAL_TAG" "$REAL_RUNS" default_enrolled "*_enrolled"
    enrolled=("real sample, enrolled rows=$OUT/real_sample_enrolled_$REAL_TAG.json")
  fi
  if [ -d "$REAL_RUNS/pretrain7" ]; then
    echo "== real sample, seven-class task (the pre-training runs)"
    $PYTHON -m emotion.summary "$REAL_RUNS/pretrain7" --per-fold --metric test/bal_acc \
      --format markdown --out "$OUT/real_sample_seven_$REAL_TAG.md" \
      --json "$OUT/real_sample_seven_$REAL_TAG.json"
  fi
  if [ -n "$TRANSFER" ]; then
    transfer "$BINARY"
  fi
  brief "synthetic=$OUT/synthetic_$TAG.json" "real sample=$OUT/real_sample_$REAL_TAG.json" \
    "${enrolled[@]}" "transfer=$OUT/transfer_$TRANSFER_TAG.json"
}

# transfer <real store>: the default recipe trained on the SYNTHETIC default (official split),
# with and without the enrolled baseline, SEEDS seeds each; every model then scores every
# person of the real sample (data.split_strategy=none), each enrolled on one neutral photo.
transfer() {
  local store=$1
  local dir="$OUT/runs/$TRANSFER_TAG/transfer"
  for name in synthetic_only synthetic_enrolled; do
    local extra=()
    [ "$name" = synthetic_enrolled ] && extra=(data.baseline=enrolled)
    echo "== transfer: $name"
    $PYTHON -m emotion.training -m seed="$SEEDS" trainer.max_epochs="$TRANSFER_EPOCHS" \
      progress_bar=none "${extra[@]}" hydra.sweep.dir="$dir/train_$name" \
      'hydra.sweep.subdir=seed${seed}'
    for run in "$dir/train_$name"/seed*/; do
      $PYTHON -m emotion.evaluate.app "$run" data.path="$store" data.split_strategy=none \
        output_dir="$dir/$name/$(basename "$run")" tensorboard=false bootstrap.resamples=200 \
        >/dev/null
    done
  done
  $PYTHON -m emotion.summary "$dir/synthetic_only" "$dir/synthetic_enrolled" --compare \
    --baseline synthetic_only --metric test/bal_acc --format markdown \
    --out "$OUT/transfer_$TRANSFER_TAG.md" --json "$OUT/transfer_$TRANSFER_TAG.json"
}

main "$@"

#!/usr/bin/env bash
# loggers_test.sh CASE FOVEA SRCDIR: the `logger` group of a training config,
# written as Lightning's CSVLogger and TensorBoardLogger write it.  The event
# files are read back by tb_decode.py, a decoder independent of fovea's.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
case_name=$1 fovea=$2 srcdir=$3
decode="$srcdir/tests/cli/tb_decode.py"

"$fovea" create-data "$tmp/d" --layout openretina --num-colors 2 >/dev/null || fail "create-data"
train() { # OUTDIR EXPECTED_EXIT [OVERRIDES...]
	local dir=$1 want=$2; shift 2
	run "$want" "$fovea" train "$srcdir/configs/hdf5_core_readout.yaml" paths.data_dir="$tmp/d" \
		data_io.color_channels=2 dataloader.batch_size=32 paths.output_dir="$dir" --threads 1 "$@"
}
# csv_value FILE ROW COLUMN: the cell of data row ROW (1-based) under COLUMN.
csv_value() {
	awk -F, -v row="$2" -v col="$3" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i }
		NR == row + 1 { print $c }' "$1"
}

case $case_name in
csv_and_tensorboard)
	train "$tmp/run" 0 trainer.max_epochs=2
	csv="$tmp/run/csv/metrics.csv"
	exists "$csv"
	exists "$tmp/run/csv/hparams.yaml"
	exists "$tmp/run/tensorboard/hparams.yaml"
	# Lightning's layout: sorted columns, the learning-rate row at the epoch's
	# start (no epoch), validation at the step count, training one step before
	[ "$(head -1 "$csv")" = "epoch,lr-AdamW,lr-AdamW-momentum,lr-AdamW-weight_decay,regularization_loss_core,regularization_loss_readout,step,train_evaluation_loss,train_loss,train_total_loss,val_evaluation_loss,val_loss,val_regularization_loss_core,val_regularization_loss_readout,val_total_loss" ] ||
		fail "metrics.csv header: $(head -1 "$csv")"
	[ "$(wc -l <"$csv")" -eq 7 ] || fail "metrics.csv: expected 6 rows: $(cat "$csv")"
	[ "$(sed -n 2p "$csv")" = ",0.01,0.9,0.01,,,0,,,,,,,," ] || fail "row 1: $(sed -n 2p "$csv")"
	[ "$(csv_value "$csv" 2 epoch),$(csv_value "$csv" 2 step)" = "0,10" ] || fail "row 2: $(sed -n 3p "$csv")"
	[ "$(csv_value "$csv" 3 epoch),$(csv_value "$csv" 3 step)" = "0,9" ] || fail "row 3: $(sed -n 4p "$csv")"
	[ "$(csv_value "$csv" 4 step)" = "10" ] || fail "row 4: $(sed -n 5p "$csv")"
	[ "$(csv_value "$csv" 6 epoch),$(csv_value "$csv" 6 step)" = "1,19" ] || fail "row 6: $(sed -n 7p "$csv")"
	# the validation correlation equals fovea's own metrics.csv
	ours=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "val_evaluation_loss") c = i } NR == 3 { print $c }' "$tmp/run/metrics.csv")
	theirs=$(csv_value "$csv" 5 val_evaluation_loss)
	python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(abs(a - b) > 1e-12 * abs(a))" "$ours" "$theirs" ||
		fail "val_evaluation_loss: metrics.csv $ours, csv logger $theirs"
	grep -q "n_neurons_dict" "$tmp/run/csv/hparams.yaml" && fail "hparams.yaml keeps n_neurons_dict"
	grep -q "hidden_channels: \[8, 8, 8\]" "$tmp/run/csv/hparams.yaml" || fail "hparams.yaml lacks the model"
	# the event file decodes, CRCs and all, with the same values in float32
	set -- "$tmp"/run/tensorboard/events.out.tfevents.*
	[ $# -eq 1 ] || fail "expected one event file: $*"
	python3 "$decode" "$1" >"$tmp/events" || fail "tb_decode failed"
	[ "$(head -1 "$tmp/events")" = "version brain.Event:2" ] || fail "first event: $(head -1 "$tmp/events")"
	grep -qx "scalar 0 hp_metric -1.0" "$tmp/events" || fail "no hp_metric"
	grep -q "^scalar 10 lr-AdamW 0.00999" "$tmp/events" || fail "no lr-AdamW at step 10"
	grep -qx "scalar 19 epoch 1.0" "$tmp/events" || fail "no epoch scalar at step 19"
	tb=$(awk '$2 == 20 && $3 == "val_evaluation_loss" { print $4 }' "$tmp/events")
	python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(abs(a - b) > 1e-6 * abs(a))" "$theirs" "${tb:-nan}" ||
		fail "tensorboard val_evaluation_loss $tb, csv $theirs"
	# a corrupted byte is caught by the decoder: the test can fail
	cp "$1" "$tmp/bad"
	printf 'X' | dd of="$tmp/bad" bs=1 seek=40 conv=notrunc 2>/dev/null
	python3 "$decode" "$tmp/bad" >/dev/null 2>&1 && fail "tb_decode accepted a corrupted file"
	;;
resume)
	# a resumed run keeps the first epoch's rows once and adds the second's
	train "$tmp/run" 0 trainer.max_epochs=1
	train "$tmp/run" 0 trainer.max_epochs=2 resume=true
	csv="$tmp/run/csv/metrics.csv"
	[ "$(wc -l <"$csv")" -eq 7 ] || fail "metrics.csv after resume: $(cat "$csv")"
	[ "$(csv_value "$csv" 6 epoch),$(csv_value "$csv" 6 step)" = "1,19" ] || fail "resumed row 6: $(cat "$csv")"
	[ "$(ls "$tmp"/run/tensorboard/events.out.tfevents.* | wc -l)" -eq 2 ] || fail "expected a second event file"
	;;
versions)
	# version: null counts version_0, version_1, ...; an integer names one
	train "$tmp/r1" 0 trainer.max_epochs=1 logger.csv.version=null logger.csv.name=exp \
		logger.tensorboard.version=3
	train "$tmp/r1" 0 trainer.max_epochs=1 logger.csv.version=null logger.csv.name=exp \
		logger.tensorboard.version=4 paths.output_dir="$tmp/r1" resume=true trainer.max_epochs=2
	exists "$tmp/r1/exp/version_0/metrics.csv"
	exists "$tmp/r1/exp/version_1/metrics.csv"
	exists "$tmp/r1/tensorboard/version_3/hparams.yaml"
	exists "$tmp/r1/tensorboard/version_4/hparams.yaml"
	;;
errors)
	train "$tmp/e1" 1 trainer.max_epochs=1 logger.csv._target_=lightning.pytorch.loggers.CSVLoger
	expect err "unknown logger 'lightning.pytorch.loggers.CSVLoger'"
	expect err "did you mean 'lightning.pytorch.loggers.CSVLogger'"
	train "$tmp/e2" 1 trainer.max_epochs=1 logger.tensorboard.log_graph=true
	expect err "log_graph"
	train "$tmp/e3" 1 trainer.max_epochs=1 +logger.csv.flush_every=3
	expect err "flush_every"
	train "$tmp/e4" 1 trainer.max_epochs=1 'logger.tensorboard.version=../../x'
	expect err "must name a directory under"
	# a logger fovea does not write is said once, never silently dropped
	train "$tmp/e5" 0 trainer.max_epochs=1 \
		'+logger.mlflow={_target_: lightning.pytorch.loggers.MLFlowLogger, experiment_name: x}'
	expect out "logger logger.mlflow skipped"
	;;
model_checkpoint)
	# Lightning's ModelCheckpoint: the best save_top_k epochs by the monitor,
	# named by the filename pattern, and last with save_last
	train "$tmp/run" 0 trainer.max_epochs=4 training_callbacks.model_checkpoint.save_top_k=2 \
		training_callbacks.model_checkpoint.save_last=true
	ls "$tmp/run/checkpoints" >"$tmp/files"
	[ "$(wc -l <"$tmp/files")" -eq 3 ] || fail "expected 2 ranked files and last: $(cat "$tmp/files")"
	grep -qx "last.safetensors" "$tmp/files" || fail "no last.safetensors"
	# the two best epochs by val_evaluation_loss (mode max), from fovea's metrics.csv
	awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "val_evaluation_loss") c = i }
		NR > 1 { printf "epoch=%02d_val_evaluation_loss=%.3f.safetensors %s\n", $1, $c, $c }' \
		"$tmp/run/metrics.csv" | sort -k2 -g -r | head -2 | cut -d' ' -f1 | sort >"$tmp/want"
	grep -v last "$tmp/files" | sort >"$tmp/got"
	cmp -s "$tmp/want" "$tmp/got" || fail "kept $(cat "$tmp/got"), expected $(cat "$tmp/want")"
	# nothing of the callback is left unread, and --strict passes (float32 asked for)
	refute err "model_checkpoint"
	train "$tmp/strict" 0 trainer.max_epochs=1 trainer.precision=32-true --strict
	refute err "not used"
	train "$tmp/steps" 1 trainer.max_epochs=1 training_callbacks.model_checkpoint.every_n_train_steps=5
	expect err "every_n_train_steps, train_time_interval and save_on_train_epoch_end are not supported"
	train "$tmp/fmt" 1 trainer.max_epochs=1 'training_callbacks.model_checkpoint.filename="{epoch:>5}"'
	expect err "format '>5' is not supported"
	;;
*)
	fail "unknown case $case_name"
	;;
esac
finish "loggers_$case_name"

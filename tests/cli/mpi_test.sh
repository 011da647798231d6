#!/usr/bin/env bash
# mpi_test.sh: work spread over processes (issue 17), through the real
# binary, one case per meson test:
#
#   mpi_test.sh CASE FOVEA SOURCE_ROOT MPI COLLECTIVES
#     (MPI: "mpi" when fovea was built with it; COLLECTIVES: the test program
#     tests/unit/parallel/mpi_collectives.c)
#
#   collectives   fovea/parallel.h's allreduce, broadcast, gather and barrier over
#                 1, 2 and 3 processes, and as one process without mpirun; its
#                 SyncBatchNorm against one process's batch norm of the batch
#   mei           `mpirun -np 1|2|3 fovea mei --neurons all` (and an MDS) write the
#                 files one process writes: .npy and .png byte for byte, .json
#                 equal but for the timing keys
#   predict       `mpirun -np 2|3 fovea predict` of a batch of 40 movies (shares of
#                 32 + 8 and 16 + 16 + 8) writes the one-process .npy byte for byte
#   train         `mpirun -np 1|2|3 fovea train` (data parallel; batch 4 over 3 is
#                 shares of 1, 1, 2, batch 2 over 3 runs whole on each; a mean
#                 loss, accumulation, clipping) ends with the weights of one
#                 process within a tolerance; rank 0 alone writes and prints;
#                 +trainer.sync_batchnorm=false changes them; a rank killed with
#                 SIGKILL, then resume=true, ends where an unbroken run ends
#   bench         `fovea-bench --task train --ranks 1,2` (mpirun itself): step,
#                 allreduce times and gradient bytes per process count
#   sweep         `mpirun -np 2 fovea sweep` of 6 grid trials, one made to fail:
#                 every trial's record, the summary, and the same objectives as
#                 the trials run one after another by one process
#   sweep_optuna  (no MPI needed) Optuna's TPE sampler through Optuna by ask
#                 and tell, checked against Optuna replaying the study
#   sweep_optuna_mpi  the same over 2 processes, in batches of 2
#   sweep_errors  (no MPI needed) the sweep's config and command-line errors,
#                 random sampling, a Slurm array's tasks sharing one directory
# The MPI cases exit 77 (skipped) when fovea has no MPI or mpirun is missing.
set -u

case_name=$1
fovea=$2
srcdir=$3
mpi=$4
collectives=$5

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

needs_mpi() {
	if [ "$mpi" != mpi ] || ! command -v mpirun >/dev/null; then
		echo "skipped: fovea was built without MPI or mpirun is missing"
		exit 77
	fi
}
# One thread per process everywhere: a result may change in its last bits
# with the thread count (float rounding), not with the process count.
export OMP_NUM_THREADS=1
# mpirun as CI runs it: as root, more processes than cores.  Under the
# sanitizers, leak checking is off inside mpirun only: Open MPI leaves its
# own allocations at exit, from plugins it has unloaded, which LSan can
# neither free nor tell apart; every run outside mpirun keeps it.
mpi_run() {
	local n=$1; shift
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		mpirun --allow-run-as-root --oversubscribe -np "$n" "$@"
}

example=$srcdir/configs/example.yaml
tiny=(paths.data_dir="$tmp/d" data_io.color_channels=1 data_io.video_height=6
	data_io.video_width=5 dataloader.train_chunk_size=20 dataloader.clip_length=40
	dataloader.num_val_clips=1 'model.core.temporal_kernel_sizes=[5]' trainer.max_epochs=2)

# A tiny data set: 2 sessions (3 and 4 neurons), 1 x 6 x 5 pixels.
tiny_data() {
	"$fovea" create-data "$tmp/d" --seed 5 --neurons 3,4 --frames 240 --train-stimuli 1 \
		--test-frames 60 --trials 3 --height 6 --width 5 --channels 1 --filter-length 4 \
		>/dev/null || fail "create-data"
}
tiny_model() {
	tiny_data
	run 0 "$fovea" train "$example" "${tiny[@]}" paths.output_dir="$tmp/run" --threads 1 \
		--no-progress --quiet
	ck=$tmp/run/best.safetensors
}

# same_files A B: the same file names; .npy/.png/.csv equal byte for byte,
# .json equal once the timing keys are dropped
same_files() {
	local a=$1 b=$2
	[ "$(cd "$a" && ls)" = "$(cd "$b" && ls)" ] || fail "$a and $b hold different files"
	for f in "$a"/*; do
		local g=$b/$(basename "$f")
		case "$f" in
		*.json) python3 - "$f" "$g" <<'PY' || fail "$f and $g differ beyond timing"
import json, sys
drop = {"seconds", "seconds_per_iteration", "iteration_seconds"}
def clean(x):
    if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items() if k not in drop}
    if isinstance(x, list):
        return [clean(v) for v in x]
    return x
a, b = (clean(json.load(open(p))) for p in sys.argv[1:])
sys.exit(0 if a == b else 1)
PY
		;;
		*) cmp -s "$f" "$g" || fail "$f and $g differ" ;;
		esac
	done
}

# weights_close A B TOL: A/last.safetensors and B/last.safetensors hold the
# same tensors, equal within TOL (absolute, plus TOL relative), and
# metrics.csv the same epochs with values equal within 100 TOL
weights_close() {
	python3 - "$@" <<'PY'
import array, csv, json, struct, sys
a, b, tol = sys.argv[1], sys.argv[2], float(sys.argv[3])
def load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    out = {}
    for k, v in head.items():
        if k == "__metadata__" or v["dtype"] != "F32":
            continue
        lo, hi = v["data_offsets"]
        out[k] = array.array("f", raw[8 + n + lo:8 + n + hi])
    return out
x, y = load(a + "/last.safetensors"), load(b + "/last.safetensors")
assert x.keys() == y.keys(), (sorted(x), sorted(y))
worst = max((abs(u - v) / (1 + abs(u)) for k in x for u, v in zip(x[k], y[k])), default=0)
print("largest difference %.3g" % worst, file=sys.stderr)
assert worst <= tol, worst
rx, ry = (list(csv.DictReader(open(d + "/metrics.csv"))) for d in (a, b))
assert len(rx) == len(ry), (len(rx), len(ry))
for p, q in zip(rx, ry):
    for k in p:
        if k.endswith("seconds") or k == "lr-AdamW" or p[k] in ("", None):
            continue
        u, v = float(p[k]), float(q[k])
        assert abs(u - v) <= 100 * tol * (1 + abs(u)), (k, u, v)
PY
}
# same_names A B: the same output files (rank 0 alone wrote them)
same_names() {
	[ "$(cd "$1" && ls -A | grep -v '^\.fovea\.lock$')" = "$(cd "$2" && ls -A |
		grep -v '^\.fovea\.lock$')" ] || fail "$1 and $2 hold different files"
}

case "$case_name" in
collectives)
	run 0 "$collectives"
	expect out "collectives over 1 processes: ok"
	needs_mpi
	for n in 1 2 3; do
		run 0 mpi_run "$n" "$collectives"
		expect out "collectives over $n processes: ok"
	done
	;;
mei)
	needs_mpi
	tiny_model
	mei=(mei "$ck" --session session_1 --neurons all stopper.max_iterations=3 --threads 1
		--no-progress)
	run 0 "$fovea" "${mei[@]}" --out "$tmp/one"
	[ "$(ls "$tmp/one" | grep -c '\.npy$')" = 4 ] || fail "one process: not 4 MEIs"
	for n in 1 2 3; do
		run 0 mpi_run "$n" "$fovea" "${mei[@]}" --out "$tmp/np$n"
		same_files "$tmp/one" "$tmp/np$n"
	done
	# each unit once: 4 summary lines over the 3 processes
	[ "$(grep -c '^mei_session_1_' "$tmp/out")" = 4 ] || { fail "not 4 MEI lines"; show out; }
	mds=(mds "$ck" --session session_1 --on 0,1 --off 2 stopper.max_iterations=3 --threads 1
		--no-progress)
	run 0 "$fovea" "${mds[@]}" --out "$tmp/mds1"
	run 0 mpi_run 2 "$fovea" "${mds[@]}" --out "$tmp/mds2"
	same_files "$tmp/mds1" "$tmp/mds2"
	;;
predict)
	needs_mpi
	tiny_model
	# float32 .npy files of normal noise, written without numpy
	python3 - "$tmp" <<'PY' || fail "writing the movies"
import random, struct, sys
def save(path, shape, seed):
    rng, n = random.Random(seed), 1
    for d in shape:
        n *= d
    head = "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }" % (tuple(shape),)
    head += " " * (63 - (10 + len(head)) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head.encode())
        f.write(struct.pack("<%df" % n, *(rng.gauss(0, 1) for _ in range(n))))
save(sys.argv[1] + "/movies.npy", (40, 1, 30, 6, 5), 3)
save(sys.argv[1] + "/movie.npy", (1, 30, 6, 5), 4)
PY
	run 0 "$fovea" predict "$ck" "$tmp/movies.npy" --session session_0 -o "$tmp/p1.npy"
	for n in 2 3; do
		run 0 mpi_run "$n" "$fovea" predict "$ck" "$tmp/movies.npy" --session session_0 \
			-o "$tmp/p$n.npy"
		cmp -s "$tmp/p1.npy" "$tmp/p$n.npy" || fail "-np $n: the prediction differs"
		[ "$(grep -c '^wrote' "$tmp/out")" = 1 ] || fail "-np $n: not one writer"
	done
	# a single movie is rank 0's; more processes than movies leave some idle
	run 0 "$fovea" predict "$ck" "$tmp/movie.npy" --session session_0 -o "$tmp/s1.npy"
	run 0 mpi_run 2 "$fovea" predict "$ck" "$tmp/movie.npy" --session session_0 -o "$tmp/s2.npy"
	cmp -s "$tmp/s1.npy" "$tmp/s2.npy" || fail "one movie: the prediction differs"
	# an error on every process: reported, non-zero, nothing written
	run 1 mpi_run 2 "$fovea" predict "$ck" "$tmp/movies.npy" --session nope -o "$tmp/bad.npy"
	expect err "nope"
	[ ! -e "$tmp/bad.npy" ] || fail "an output was written after an error"
	;;
train)
	needs_mpi
	tiny_data
	train=(train "$example" "${tiny[@]}" trainer.max_epochs=3 --threads 1 --no-progress)
	run 0 "$fovea" "${train[@]}" paths.output_dir="$tmp/t1"
	notes=$(grep -c 'EarlyStopping' "$tmp/err")
	for n in 1 2 3; do
		run 0 mpi_run "$n" "$fovea" "${train[@]}" paths.output_dir="$tmp/np$n"
		[ "$(grep -c '^trained 3 epochs' "$tmp/out")" = 1 ] || fail "-np $n: not one summary"
		[ "$(grep -c 'EarlyStopping' "$tmp/err")" = "$notes" ] || fail "-np $n: not rank 0's notes"
		weights_close "$tmp/t1" "$tmp/np$n" 1e-4 || fail "-np $n: other weights than one process"
		same_names "$tmp/t1" "$tmp/np$n"
	done
	expect out "data-parallel training over 3 processes (batch norm synced)"
	# a global batch smaller than the job: every rank computes it whole
	small=("${train[@]}" dataloader.batch_size=2 trainer.max_epochs=2)
	run 0 "$fovea" "${small[@]}" paths.output_dir="$tmp/b1" --quiet
	run 0 mpi_run 3 "$fovea" "${small[@]}" paths.output_dir="$tmp/b3" --quiet
	weights_close "$tmp/b1" "$tmp/b3" 1e-4 || fail "batch 2 over 3: other weights"
	# a loss that averages over the batch (weighed by the shares), gradient
	# accumulation and clipping
	mean=("${train[@]}" trainer.accumulate_grad_batches=2 trainer.gradient_clip_val=0.5
		'+model.loss={_target_: openretina.modules.losses.PoissonLoss3d, avg: true}' --quiet)
	run 0 "$fovea" "${mean[@]}" paths.output_dir="$tmp/m1"
	run 0 mpi_run 3 "$fovea" "${mean[@]}" paths.output_dir="$tmp/m3"
	weights_close "$tmp/m1" "$tmp/m3" 1e-4 || fail "mean loss, accumulation, clipping: other weights"
	# per-process batch norm statistics: another optimisation
	run 0 mpi_run 2 "$fovea" "${train[@]}" +trainer.sync_batchnorm=false \
		paths.output_dir="$tmp/nosync" --quiet
	! weights_close "$tmp/t1" "$tmp/nosync" 1e-4 2>/dev/null ||
		fail "sync_batchnorm=false trained what synced batch norm trains"
	# an error on every rank: one message per rank, the job ends non-zero
	run 1 mpi_run 2 "$fovea" "${train[@]}" trainer.max_epochs=nope paths.output_dir="$tmp/e"
	expect err "max_epochs"
	# SIGKILL of rank 1 once epoch 1 is written; resume=true finishes the run
	# (enough epochs that an idle machine cannot finish before the kill lands)
	long=("${train[@]}" trainer.max_epochs=60 --quiet)
	run 0 "$fovea" "${long[@]}" paths.output_dir="$tmp/whole"
	mpi_run 2 "$fovea" "${long[@]}" paths.output_dir="$tmp/r" >/dev/null 2>&1 &
	job=$!
	for _ in $(seq 600); do
		[ -e "$tmp/r/last.safetensors" ] && break
		sleep 0.05
	done
	# one rank: the ranks are the fovea processes of this output directory
	victim=$(ps -eo pid=,args= | awk -v d="output_dir=$tmp/r" -v f="$fovea" \
		'$2 == f && index($0, d) {print $1}' | sort -n | tail -n 1)
	[ -n "$victim" ] || fail "no rank of the job to kill"
	kill -KILL "$victim"
	wait "$job" && fail "the job went on after a rank was killed"
	python3 - "$tmp/r/metrics.csv" <<'PY' || fail "the kill came after the last epoch"
import sys
sys.exit(0 if sum(1 for _ in open(sys.argv[1])) - 1 < 60 else 1)
PY
	run 0 mpi_run 2 "$fovea" "${long[@]}" paths.output_dir="$tmp/r" resume=true
	weights_close "$tmp/whole" "$tmp/r" 1e-4 || fail "resumed: other weights than unbroken"
	;;
bench)
	needs_mpi
	bench=$(dirname "$fovea")/fovea-bench
	# it runs mpirun itself: leak checking off, as in mpi_run
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		run 0 "$bench" --config-dir "$srcdir/configs/bench" --workload hdf5 --task train \
		--ranks 1,2 --threads 1 --reps 2 --json
	for field in '"task": "train/1"' '"task": "train/2"' '"ranks": 2' '"allreduce_ms": ' \
	             '"grad_bytes": 42672' '"task": "allreduce"' '"gb_per_s": '; do
		expect out "$field"
	done
	[ "$(grep -c '"task": "train/2"' "$tmp/out")" = 1 ] || fail "rank 1 reported too"
	run 2 "$bench" --ranks 0
	expect err "--ranks: expected up to 8 process counts in 1..4096, got '0'"
	;;
sweep)
	needs_mpi
	tiny_data
	# 6 grid trials: 3 learning rates x 2 seeds; lr 'fast' is not a number
	sweep=(sweep "$example" "${tiny[@]}" trainer.max_epochs=1 +hydra.sweeper.n_trials=10
		'optimizer.lr=choice(0.01, fast, 0.003)' 'seed=range(1, 2)' --sampler grid
		+objective_target=val_correlation +hydra.sweeper.direction=maximize --threads 1 --quiet)
	run 0 mpi_run 2 "$fovea" "${sweep[@]}" --out "$tmp/s2"
	expect out "sweep fovea_sweep: 4 complete, 2 failed, 0 not run"
	for t in 0 1 2 3 4 5; do exists "$tmp/s2/$t/trial.json"; done
	[ ! -e "$tmp/s2/6" ] || fail "a 7th trial ran on a grid of 6"
	exists "$tmp/s2/0/best.safetensors"
	python3 - "$tmp/s2" <<'PY' || fail "summary.json"
import csv, json, sys
d = sys.argv[1]
s = json.load(open(d + "/summary.json"))
assert s["n_trials"] == 6 and s["sampler"] == "grid" and s["direction"] == "maximize", s
t = s["trials"]
assert [x["number"] for x in t] == list(range(6))
assert [x["params"]["optimizer.lr"] for x in t] == ["0.01", "0.01", "fast", "fast", "0.003", "0.003"]
assert [x["params"]["seed"] for x in t] == ["1", "2"] * 3
assert [x["status"] for x in t] == ["complete"] * 2 + ["failed"] * 2 + ["complete"] * 2
assert "optimizer.lr" in t[2]["error"] or "fast" in t[2]["error"], t[2]["error"]
ok = [x for x in t if x["status"] == "complete"]
assert s["best_trial"]["objective"] == max(x["objective"] for x in ok)
rows = list(csv.DictReader(open(d + "/summary.csv")))
assert [r["status"] for r in rows] == [x["status"] for x in t]
assert rows[0]["optimizer.lr"] == "0.01" and rows[2]["objective"] == ""
PY
	# the trials of one process, one after another, score the same
	run 0 "$fovea" "${sweep[@]}" --out "$tmp/s1"
	python3 - "$tmp/s1" "$tmp/s2" <<'PY' || fail "1 and 2 processes score differently"
import json, sys
a, b = ([t.get("objective") for t in json.load(open(d + "/summary.json"))["trials"]]
        for d in sys.argv[1:])
assert a == b, (a, b)
PY
	;;
sweep_optuna|sweep_optuna_mpi)
	# Optuna's TPE sampler run by Optuna itself (ask and tell): 6 trials, the
	# learning rate 'fast' fails; replayed by optuna_replay.py against a
	# study of its own, in batches of one trial per process
	py=/usr/bin/python3
	[ -x "$py" ] || py=python3
	"$py" -c 'import optuna' 2>/dev/null || { echo "no python3-optuna (tools/setup installs it)"; exit 77; }
	np=1 launch=()
	if [ "$case_name" = sweep_optuna_mpi ]; then
		needs_mpi
		np=2 launch=(mpi_run 2)
	fi
	tiny_data
	run 0 "${launch[@]}" "$fovea" sweep "$example" "${tiny[@]}" trainer.max_epochs=1 \
		+hydra.sweeper.n_trials=6 'optimizer.lr=choice(0.01, fast, 0.003)' \
		'optimizer.weight_decay=tag(log, interval(1e-4, 1e-1))' 'seed=range(1, 3)' \
		+hydra.sweeper.sampler._target_=optuna.samplers.TPESampler \
		+hydra.sweeper.sampler.seed=5 +hydra.sweeper.sampler.n_startup_trials=3 \
		+objective_target=val_correlation +hydra.sweeper.direction=maximize \
		--threads 1 --quiet --out "$tmp/tpe"
	echo "$out"
	expect out "sweep fovea_sweep: "
	exists "$tmp/tpe/optuna.db"
	"$py" "$srcdir/tests/cli/optuna_replay.py" "$tmp/tpe" "$np" 5 3 || fail "Optuna's replay"
	grep -q '"failed"' "$tmp/tpe/summary.json" || fail "no trial failed: pick a sampler seed that tries 'fast'"
	# without python3-optuna: one message naming what is missing
	run 1 env FOVEA_PYTHON=/nonexistent/python3 "$fovea" sweep "$example" "${tiny[@]}" \
		'seed=range(1, 3)' +hydra.sweeper.sampler._target_=optuna.samplers.TPESampler \
		--quiet --out "$tmp/nopy"
	expect err "python3-optuna"
	;;
sweep_errors)
	tiny_data
	base=(sweep "$example" "${tiny[@]}" trainer.max_epochs=1 --threads 1 --quiet)
	run 2 "$fovea" sweep
	expect err "fovea sweep: expected a config file"
	run 1 "$fovea" sweep "$tmp/none.yaml" 'a=choice(1)'
	expect err "none.yaml: cannot open the configuration file"
	run 2 "$fovea" "${base[@]}" --threads 0
	expect err "--threads needs an integer in 1..4096, got '0'"
	run 1 "$fovea" "${base[@]}" --out "$tmp/e"
	expect err "hydra.sweeper.params is empty"
	run 1 "$fovea" "${base[@]}" 'optimizer.lr=interval(0.1, 0.01)' --out "$tmp/e"
	expect err "interval expects (start, end) numbers with start <= end"
	run 1 "$fovea" "${base[@]}" 'optimizer.lr=interval(0.001, 0.01)' --sampler grid --out "$tmp/e"
	expect err "optimizer.lr: an interval has no grid"
	run 1 "$fovea" "${base[@]}" 'optimizer.lr=tag(log, interval(0, 0.1))' --out "$tmp/e"
	expect err "optimizer.lr=tag(log, interval(0, 0.1)): tag(log, interval(a, b)) needs a > 0"
	run 1 "$fovea" "${base[@]}" 'optimizer.lr=choice(0.01)' +hydra.sweeper.direction=up \
		--out "$tmp/e"
	expect err "hydra.sweeper.direction: expected minimize or maximize, got 'up'"
	run 2 "$fovea" "${base[@]}" --sampler tpe
	expect err "--sampler: expected random, grid or optuna, got 'tpe'"
	run 1 env SLURM_ARRAY_TASK_ID=0 SLURM_ARRAY_TASK_COUNT=2 "$fovea" "${base[@]}" \
		'optimizer.lr=choice(0.01)'
	expect err "give --out DIR"
	# every trial fails: recorded, and the sweep says so
	run 1 "$fovea" "${base[@]}" 'optimizer.lr=choice(slow, fast)' --out "$tmp/allbad"
	expect err "no trial completed"
	exists "$tmp/allbad/summary.json"
	# random sampling in a Slurm array of 2 tasks, one after the other: the
	# first leaves its own trials, the second completes the summary
	rnd=("${base[@]}" 'optimizer.lr=tag(log, interval(0.001, 0.1))' 'seed=range(1, 100)'
		+hydra.sweeper.n_trials=3 +hydra.sweeper.sampler.seed=7)
	run 0 env SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=2 "$fovea" "${rnd[@]}" --out "$tmp/slurm"
	exists "$tmp/slurm/1/trial.json"
	[ ! -e "$tmp/slurm/0" ] || fail "task 1 of 2 ran trial 0"
	expect out "1 complete, 0 failed, 2 not run"
	run 0 env SLURM_ARRAY_TASK_ID=0 SLURM_ARRAY_TASK_COUNT=2 "$fovea" "${rnd[@]}" --out "$tmp/slurm"
	expect out "3 complete, 0 failed, 0 not run"
	python3 - "$tmp/slurm" <<'PY' || fail "random trials"
import json, sys
t = json.load(open(sys.argv[1] + "/summary.json"))["trials"]
lr = [float(x["params"]["optimizer.lr"]) for x in t]
seed = [int(x["params"]["seed"]) for x in t]
assert all(0.001 <= v <= 0.1 for v in lr) and all(1 <= v <= 100 for v in seed), (lr, seed)
assert len(set(lr)) == 3, lr
PY
	# without a seed the tasks of an array draw with their job id
	draw=("${base[@]}" 'optimizer.lr=interval(0.001, 0.1)' +hydra.sweeper.n_trials=2)
	for task in 0 1; do
		run 0 env SLURM_ARRAY_JOB_ID=123 SLURM_ARRAY_TASK_ID=$task SLURM_ARRAY_TASK_COUNT=2 \
			"$fovea" "${draw[@]}" --out "$tmp/noseed"
	done
	run 0 "$fovea" "${draw[@]}" +hydra.sweeper.sampler.seed=123 --out "$tmp/seed123"
	python3 - "$tmp/noseed" "$tmp/seed123" <<'PY' || fail "an array without a seed"
import json, sys
a, b = (json.load(open(d + "/summary.json")) for d in sys.argv[1:])
assert a["seed"] == 123 and [t["params"] for t in a["trials"]] == [t["params"] for t in b["trials"]]
PY
	# a search config as openretina writes one: params in the file, choices
	# of lists, Optuna's GridSampler named by its _target_
	cp -r "$srcdir/configs" "$tmp/c"
	cat "$example" - >"$tmp/c/search.yaml" <<'YAML'
objective_target: val_loss
hydra:
  sweep:
    dir: ${paths.log_dir}/search_runs
  sweeper:
    sampler:
      _target_: optuna.samplers.GridSampler
    direction: minimize
    study_name: tiny_search
    n_trials: 50
    params:
      model.hidden_channels: choice([2], [3])
      trainer.max_epochs: 1
YAML
	run 0 "$fovea" sweep "$tmp/c/search.yaml" "${tiny[@]}" paths.log_dir="$tmp" --threads 1 \
		--quiet
	refute err "not used: objective_target"
	expect out "sweep tiny_search: 2 complete, 0 failed, 0 not run; summary in $tmp/search_runs"
	python3 - "$tmp/search_runs" <<'PY' || fail "the search config's trials"
import json, sys
s = json.load(open(sys.argv[1] + "/summary.json"))
assert s["sampler"] == "grid" and s["objective_target"] == "val_loss", s
p = [t["params"] for t in s["trials"]]
assert p == [{"model.hidden_channels": "[2]", "trainer.max_epochs": "1"},
             {"model.hidden_channels": "[3]", "trainer.max_epochs": "1"}], p
assert s["best_trial"]["objective"] == min(t["objective"] for t in s["trials"])
PY
	grep -q "hidden_channels:" "$tmp/search_runs/1/config.yaml" || fail "trial 1 has no config.yaml"
	# the same seed draws the same trials again
	run 0 "$fovea" "${rnd[@]}" --out "$tmp/again"
	python3 - "$tmp/slurm" "$tmp/again" <<'PY' || fail "a seed drew different values"
import json, sys
a, b = ([t["params"] for t in json.load(open(d + "/summary.json"))["trials"]] for d in sys.argv[1:])
assert a == b, (a, b)
PY
	;;
*)
	echo "unknown case $case_name" >&2
	exit 2
	;;
esac
finish "$case_name"

"""fovea from Python, end to end: synthetic recordings, a trained model, its
predictions next to the recorded responses, and the most exciting input of
the best-predicted neuron (drawn with matplotlib when it is installed).

    PYTHONPATH=build/tools/python python3 docs/examples/predict_and_mei.py [WORKDIR]

With a trained model already at hand, skip the first steps:

    python3 docs/examples/predict_and_mei.py WORKDIR --checkpoint runs/example/best.safetensors --data data

--small trains a tiny model in seconds (the test of this example uses it).
"""
import argparse
import os

import numpy as np

import fovea

CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "configs",
                      "example.yaml")
# configs/example.yaml scaled down to a tiny data set
SMALL_DATA = dict(seed=5, neurons=[3, 4], frames=240, train_stimuli=1, test_frames=60, trials=3,
                  height=6, width=5, channels=1, filter_length=4)
SMALL_TRAINING = ["data_io.color_channels=1", "data_io.video_height=6", "data_io.video_width=5",
                  "dataloader.batch_size=4", "dataloader.train_chunk_size=20",
                  "dataloader.clip_length=40", "dataloader.num_val_clips=1",
                  "model.core.temporal_kernel_sizes=[5]", "trainer.max_epochs=3"]


def train_a_model(workdir, small):
    data = os.path.join(workdir, "data")
    fovea.create_data(data, **(SMALL_DATA if small else {}))
    run = os.path.join(workdir, "run")

    def progress(epoch, metrics):  # e.g. to update a live plot in a notebook
        print("epoch %d: validation correlation %.3f%s" % (
            epoch + 1, metrics["val_evaluation_loss"], "  (best)" if metrics["best"] else ""))

    overrides = ["paths.data_dir=" + data, "paths.output_dir=" + run, "seed=1"]
    result = fovea.train(CONFIG, overrides=overrides + (SMALL_TRAINING if small else []),
                         callback=progress)
    return os.path.join(result["output_dir"], "best.safetensors"), data


def correlation(a, b):
    a, b = a - a.mean(0), b - b.mean(0)
    return (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))


def draw(workdir, prediction, recorded, neuron, mei):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figure")
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3))
    axes[0].plot(recorded[:, neuron], label="recorded (trial average)")
    axes[0].plot(prediction[:, neuron], label="predicted")
    axes[0].set_xlabel("frame")
    axes[0].legend()
    stim = mei["stimulus"]                      # (channels, time, height, width)
    c, t, h, w = np.unravel_index(np.abs(stim).argmax(), stim.shape)
    lim = np.abs(stim).max()
    axes[1].imshow(stim[c, t], cmap="RdBu_r", vmin=-lim, vmax=lim)
    axes[1].set_title("MEI, channel %d, frame %d" % (c, t))
    path = os.path.join(workdir, "predict_and_mei.png")
    fig.savefig(path, dpi=80)
    print("figure:", path)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workdir", nargs="?", default="python_example")
    ap.add_argument("--checkpoint")
    ap.add_argument("--data")
    ap.add_argument("--small", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    if args.checkpoint:
        checkpoint, data = args.checkpoint, args.data
    else:
        checkpoint, data = train_a_model(args.workdir, args.small)

    model = fovea.load(checkpoint)
    print(model)
    session = model.sessions[0]

    # predict the test movie and compare with what was recorded
    test = fovea.test_set(model, data, session)[0]
    prediction = model(test["movie"], session=session)       # (time - lag, neurons)
    recorded = test["responses"][-len(prediction):]
    corr = correlation(prediction, recorded)
    print("%s, stimulus '%s': correlation per neuron %s" % (
        session, test["stimulus"], np.array2string(corr, precision=2)))
    metrics = fovea.evaluate(model, data)                     # openretina's metrics
    print("test correlation (all sessions): %.3f" % metrics["summary"]["corr_to_avg_mean"])

    # the most exciting input of the best-predicted neuron
    neuron = int(np.nanargmax(corr))
    mei = fovea.mei(model, session, neuron, overrides=["stopper.max_iterations=20"])
    print("MEI of neuron %d: objective %.3f -> %.3f in %d iterations" % (
        neuron, mei["objective"][0], mei["final_objective"], mei["iterations"]))
    response = model(mei["stimulus"], session=session)[:, neuron].mean()
    print("its mean predicted response %.3f, to the test movie %.3f" % (
        response, prediction[:, neuron].mean()))
    np.save(os.path.join(args.workdir, "mei.npy"), mei["stimulus"])
    draw(args.workdir, prediction, recorded, neuron, mei)
    return corr, mei


if __name__ == "__main__":
    main()

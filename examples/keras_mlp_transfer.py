"""A Keras user's transfer learning, end to end with warmstart: the worked example of a Keras MLP on 100-dim vectors.

1. Keras pretrains an MLP (Dense 100 -> 64 -> 32 -> 10) on a 10-class source task with plenty of labels and saves
   its weights (``model.save_weights``), as the seed example does before ``model.load_weights(...)``.
2. warmstart fine-tunes those weights on a related target task with few labels (10 per class), starting the same
   architecture (``--model mlp --model-option hidden=[64,32]``) from them, and ``compare`` measures it against
   training from scratch over seeds, with a confidence interval and a paired test.
3. The same, in memory, through the scikit-learn style estimator ``warmstart.Transfer`` on NumPy arrays.

Run it (Keras 3 on any backend; the torch backend needs nothing more than warmstart)::

    pip install 'warmstart[keras]' keras
    python examples/keras_mlp_transfer.py            # a minute or two on 2 CPU cores
    python examples/keras_mlp_transfer.py --small    # seconds (the test runs this)

The command-line equivalent of step 2, on the files this script writes to ``--workdir``::

    warmstart finetune --from keras:keras_example/pretrained_model.weights.h5 --model mlp \\
        --model-option hidden=[64,32] --data keras_example/target.npz --shots 10 --out runs/keras-target
    warmstart compare --from keras:keras_example/pretrained_model.weights.h5 --model mlp \\
        --model-option hidden=[64,32] --data keras_example/target.npz --shots 10 --seeds 3

Keras 3 insists that ``save_weights`` files end in ``.weights.h5``; a Keras 2 ``save_weights("pretrained_model.h5")``
file, or a whole model saved with ``model.save("model.keras")`` (which needs no ``--model``), loads the same way.

The data: both tasks see the same kind of 100-dim vectors, a fixed nonlinear embedding of an 8-dim latent vector
plus noise; the source and the target label two related but different partitions of that latent space (the target's
class directions are the source's, perturbed). What the source MLP learnt about the embedding is what the target
needs, which is the situation transfer learning is for. With 10 labels per class, training the whole pretrained
network (``full``) forgets much of it, and a linear probe on the Keras features keeps it: here it beats scratch by
about 25 points. (``strategy="auto"`` would choose gradual unfreezing, the best strategy on warmstart's image
benchmarks, which on this task does no better than scratch: compare strategies on your own data.)
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")  # any backend works; torch's comes with warmstart

LATENT, FEATURES, CLASSES = 8, 100, 10


def make_task(rng: np.random.Generator, embedding: np.ndarray, labelling: np.ndarray, n: int):
    """``n`` vectors of the shared embedding, labelled by ``labelling``'s partition of the latent space."""
    z = rng.normal(size=(n, LATENT))
    x = np.tanh(z @ embedding) + 0.1 * rng.normal(size=(n, FEATURES))
    return x.astype(np.float32), (z @ labelling).argmax(axis=1)


def pretrain_in_keras(x: np.ndarray, y: np.ndarray, file: Path, epochs: int, batch_size: int) -> float:
    """The seed example's model, trained and saved by Keras; its accuracy on the source training set."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(CLASSES, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0)
    model.save_weights(file)
    return float(history.history["accuracy"][-1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="keras_example", help="where the weights and the target data go")
    parser.add_argument("--small", action="store_true", help="a seconds-long run (fewer examples, seeds, epochs)")
    args = parser.parse_args(argv)

    import warmstart
    from warmstart import ModelConfig, TrainConfig

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    embedding, source_labels = rng.normal(size=(LATENT, FEATURES)), rng.normal(size=(LATENT, CLASSES))
    target_labels = source_labels + 0.3 * rng.normal(size=(LATENT, CLASSES))  # a related task, not the same one
    small = args.small
    source_n, keras_epochs, keras_batch = (1000, 12, 100) if small else (10000, 20, 64)
    test_n, seeds, epochs = (500, 2, 20) if small else (2000, 3, 30)

    # 1. Keras: pretrain on the source and save the weights
    x_source, y_source = make_task(rng, embedding, source_labels, source_n)
    weights = workdir / "pretrained_model.weights.h5"
    source_accuracy = pretrain_in_keras(x_source, y_source, weights, keras_epochs, keras_batch)
    print(f"Keras source model: training accuracy {source_accuracy:.3f}, weights in {weights}")

    # 2. warmstart: the target task (its own test split), fine-tuned from the Keras weights against scratch
    x_target, y_target = make_task(rng, embedding, target_labels, 1000)
    x_test, y_test = make_task(rng, embedding, target_labels, test_n)
    np.savez(workdir / "target.npz", x=x_target, y=y_target, x_test=x_test, y_test=y_test)
    architecture = ModelConfig("mlp", {"hidden": [64, 32]})  # the Keras model's Dense 64 -> 32
    train = TrainConfig(epochs=epochs, batch_size=16, progress=False)
    strategies = ("linear-probe",) if small else ("full", "linear-probe", "lp-ft")
    result = warmstart.compare(f"keras:{weights}", str(workdir / "target.npz"), strategies=strategies, shots=(10,),
                               seeds=seeds, model=architecture, train=train, plateau=not small)
    accuracy = {cell.strategy: cell.accuracy_mean for cell in result.cells}
    for cell in result.cells:
        gain = "" if cell.gain_points_mean is None else f", gain over scratch {cell.gain_points_mean:+.1f} points"
        print(f"compare, 10 labels per class: {cell.strategy:<13} accuracy {cell.accuracy_mean:.3f}{gain}")

    # 3. the same in memory, through the estimator (scikit-learn's conventions; nothing written)
    few = np.concatenate([np.flatnonzero(y_target == c)[:10] for c in range(CLASSES)])
    # 10 labels per class leave nothing to spare for a validation split (compare's few-shot runs hold none out)
    settings = dict(model=architecture, epochs=epochs, batch_size=16, val_fraction=0.0)
    tuned = warmstart.Transfer(f"keras:{weights}", "linear-probe", **settings)
    scratch = warmstart.Transfer(None, "full", **settings)
    estimator = {"fine-tuned": tuned.fit(x_target[few], y_target[few]).score(x_test, y_test),
                 "scratch": scratch.fit(x_target[few], y_target[few]).score(x_test, y_test)}
    print(f"Transfer estimator, 10 labels per class: fine-tuned {estimator['fine-tuned']:.3f}, "
          f"scratch {estimator['scratch']:.3f}")
    return {"source_accuracy": source_accuracy, "compare": accuracy, "estimator": estimator, "result": result}


if __name__ == "__main__":
    main()

import warnings

from warmstart.evaluation import plots


def test_learning_curves_of_a_run_without_accuracy_draw_without_a_legend_warning():
    # a self-supervised run logs a loss per epoch and no accuracy: the accuracy panel says so instead of
    # matplotlib's "No artists with labels found to put in legend" warning
    epochs = [{"epoch": 1, "train_loss": 3.2}, {"epoch": 2, "train_loss": 2.9}]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        png = plots.learning_curves(epochs)
    assert png and isinstance(png, str)

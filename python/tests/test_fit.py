"""The estimator trains the CLI's run: same split, same numbers; -1 labels and extra
unlabelled examples train on the labels given."""

import json
import sys

import numpy as np
import pytest

import ladder
from conftest import EPOCHS, PRESET, SEED, metrics_lines

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def test_fit_gives_the_numbers_of_ladder_train(mnist, cli_run):
    X, y, Xt, yt = mnist
    clf = ladder.LadderClassifier(preset=PRESET, epochs=EPOCHS)
    clf.fit(X, y, seed=SEED, eval_set=(Xt, yt), progress=False)
    # Every epoch's costs and errors, to the last bit of their JSON.
    assert clf.history_ == metrics_lines(cli_run)
    summary = json.loads((cli_run / "summary.json").read_text())
    for key in ("test_error_percent", "final_cost", "labeled", "unlabeled", "seed", "epochs"):
        assert clf.summary_[key] == summary[key], key
    assert (clf.summary_["labeled"], clf.summary_["unlabeled"]) == (100, 8000)
    # The predictions are the ones the reported error counts.
    wrong = np.count_nonzero(clf.predict(Xt) != yt)
    assert 100.0 * wrong / len(yt) == pytest.approx(summary["test_error_percent"], abs=1e-9)
    assert clf.score(Xt, yt) == pytest.approx(1 - wrong / len(yt))
    # The configuration is the one the CLI recorded.
    recorded = tomllib.loads((cli_run / "config.toml").read_text())
    for key, value in recorded.items():
        assert clf.config_[key] == value, key


def test_uint8_pixels_are_the_float_pixels_times_255(mnist, cli_run):
    X, y, Xt, yt = mnist
    model = ladder.load(cli_run)
    as_bytes = np.rint(Xt[:100] * 255).astype(np.uint8)
    np.testing.assert_array_equal(model.probabilities(as_bytes), model.probabilities(Xt[:100]))
    # float64 is converted to float32, not refused.
    clf_proba = ladder.load(cli_run).probabilities(np.asarray(Xt[:5], dtype=np.float32))
    assert clf_proba.shape == (5, 10) and clf_proba.dtype == np.float32
    np.testing.assert_allclose(clf_proba.sum(axis=1), 1.0, atol=1e-5)


def balanced_labels(y, per_class, seed):
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in range(10)])


def test_minus_one_labels_train_on_the_labels_given(mnist):
    X, y, Xt, yt = mnist
    keep = balanced_labels(y, 10, seed=0)
    partial = np.full_like(y, -1)
    partial[keep] = y[keep]
    clf = ladder.LadderClassifier(preset=PRESET, epochs=1).fit(X, partial, seed=3,
                                                               progress=False)
    assert (clf.summary_["labeled"], clf.summary_["unlabeled"]) == (100, 8000)
    assert clf.config_["labeled_samples"] == 100
    assert clf.summary_["test_error_percent"] is None
    assert clf.history_[0]["test_error_percent"] is None
    # One epoch with 100 labels: far above chance (10 %).
    assert clf.score(Xt, yt) > 0.6


def test_extra_unlabelled_examples_join_the_unlabelled_set(mnist):
    X, y, Xt, yt = mnist
    keep = balanced_labels(y, 10, seed=1)
    rest = np.setdiff1d(np.arange(len(y)), keep)
    clf = ladder.LadderClassifier(preset=PRESET, epochs=1)
    clf.fit(X[keep], y[keep], X_unlabelled=X[rest], seed=2, progress=False)
    assert (clf.summary_["labeled"], clf.summary_["unlabeled"]) == (100, 8000)
    assert clf.score(Xt, yt) > 0.6


def test_a_comparison_method_trains_through_method(mnist):
    X, y, Xt, yt = mnist
    clf = ladder.LadderClassifier(preset=PRESET, method="mean-teacher", epochs=1)
    clf.fit(X, y, seed=1, progress=False)
    assert clf.config_["mean_teacher_decay"] == 0.99
    assert clf.config_["denoising_cost_x"] == "0"
    assert clf.score(Xt, yt) > 0.3


def test_progress_reaches_a_callback_and_a_raising_callback_stops_the_fit(mnist):
    X, y, _, _ = mnist
    events = []
    clf = ladder.LadderClassifier(preset=PRESET, epochs=1)
    clf.fit(X, y, seed=1, progress=events.append)
    steps = [e for e in events if "step" in e]
    assert [e["step"] for e in steps] == list(range(1, 81))
    assert all(e["steps"] == 80 and e["epoch"] == 1 for e in steps)
    assert [e["line"].split(" lr ")[0] for e in events if "line" in e] == ["seed 1 epoch 1/1"]

    def stop(event):
        if event.get("step") == 3:
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        ladder.LadderClassifier(preset=PRESET, epochs=1).fit(X, y, progress=stop)
    # The stop does not stay set for the next fit.
    again = ladder.LadderClassifier(preset=PRESET, epochs=1).fit(X, y, seed=1, progress=False)
    assert again.history_ == clf.history_


def test_the_estimator_protocol(mnist):
    clf = ladder.LadderClassifier(preset=PRESET, epochs=3, lr=0.001)
    params = clf.get_params()
    assert params == {"preset": PRESET, "method": "ladder", "device": "cpu", "epochs": 3,
                      "lr": 0.001}
    twin = type(clf)(**params)
    assert twin.get_params() == params
    twin.set_params(method="vat", epochs=4)
    assert twin.config()["vat_epsilon"] == 5.0 and twin.config()["epochs"] == 4
    assert clf.get_params()["epochs"] == 3

"""Bad inputs raise Python exceptions with the CLI's messages, never an abort."""

import numpy as np
import pytest

import ladder
from conftest import PRESET, run_cli


@pytest.fixture
def clf():
    return ladder.LadderClassifier(preset=PRESET, epochs=1)


def test_bad_shapes_and_values_raise_value_error(clf):
    x = np.zeros((200, 784), np.float32)
    y = np.zeros(200, np.int64)
    with pytest.raises(ValueError, match="1 dimension"):
        clf.fit(np.zeros(784, np.float32), y[:1], progress=False)
    with pytest.raises(ValueError, match="200 examples but 199 labels"):
        clf.fit(x, y[:199], progress=False)
    bad = x.copy()
    bad[7, 3] = np.nan
    with pytest.raises(ValueError, match="not finite .* at example 7"):
        clf.fit(bad, y, progress=False)
    with pytest.raises(TypeError, match="uint8"):
        clf.fit(x.astype(np.int32), y, progress=False)
    with pytest.raises(ValueError, match="one-dimensional"):
        clf.fit(x, y.reshape(20, 10), progress=False)


def test_labels_out_of_range_raise_value_error(clf):
    x = np.zeros((200, 784), np.float32)
    y = np.zeros(200, np.int64)
    y[5] = 10
    with pytest.raises(ValueError, match=r"y\[5\] = 10: labels must lie in 0..10"):
        clf.fit(x, y, progress=False)
    y[5] = -2
    with pytest.raises(ValueError, match=r"y\[5\] = -2"):
        clf.fit(x, y, progress=False)
    y[5] = -1
    with pytest.raises(ValueError, match="labeled_samples = 50"):
        ladder.LadderClassifier(preset=PRESET, labeled_samples=50).fit(x, y, progress=False)
    with pytest.raises(ValueError, match=r"eval_set y\[0\] = -1"):
        clf.fit(x, np.zeros(200, np.int64), eval_set=(x[:3], np.array([-1, 0, 0])),
                progress=False)


def test_bad_settings_raise_value_error_with_the_cli_message(clf):
    with pytest.raises(ValueError, match="unknown field `lrr`"):
        ladder.LadderClassifier(lrr=1).config()
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        ladder.LadderClassifier(method="nope").config()
    with pytest.raises(ValueError) as raised:
        ladder.LadderClassifier(preset="no-such-preset").config()
    cli = run_cli("train", "--preset", "no-such-preset", "--epochs", "1", check=False)
    assert cli.returncode != 0
    assert cli.stderr.strip() == f"error: {raised.value}"


def test_prediction_errors(mnist, cli_run):
    model = ladder.load(cli_run)
    with pytest.raises(ValueError, match="100 values each but the model expects 784"):
        model.probabilities(np.zeros((3, 100), np.float32))
    with pytest.raises(ValueError, match="not fitted"):
        ladder.LadderClassifier().predict(np.zeros((1, 784), np.float32))


def test_file_errors_raise_os_error(tmp_path, cli_run):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ladder.load(tmp_path / "nowhere.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not a header")
    with pytest.raises(ValueError, match="garbage.safetensors"):
        ladder.load(garbage)
    with pytest.raises(OSError, match="not a run directory"):
        ladder.read_run(tmp_path)
    # A second writer (or a rerun) never replaces a finished run unasked.
    with pytest.raises(FileExistsError, match="already holds a run"):
        ladder.train({"preset": PRESET, "epochs": 2}, cli_run)

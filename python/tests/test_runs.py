"""Runs, exported models and robustness from Python, checked against the CLI's files."""

import csv
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import ladder
from conftest import PRESET, ROOT, run_cli


def write_idx_images(path, images):
    """An IDX file of uint8 images (n, 28, 28)."""
    n, h, w = images.shape
    header = bytes([0, 0, 0x08, 3]) + b"".join(d.to_bytes(4, "big") for d in (n, h, w))
    path.write_bytes(header + images.astype(np.uint8).tobytes())


def test_an_export_predicts_what_ladder_predict_prints(tmp_path, mnist, cli_run):
    _, _, Xt, _ = mnist
    exported = tmp_path / "model.safetensors"
    run_cli("export", str(cli_run), "--out", str(exported))
    images = np.rint(Xt[:64] * 255).astype(np.uint8)
    write_idx_images(tmp_path / "images.idx", images)
    out = tmp_path / "p.csv"
    run_cli("predict", str(exported), str(tmp_path / "images.idx"), "--probabilities",
            "--out", str(out))
    rows = list(csv.DictReader(out.open()))
    printed = np.array([[float(r[f"p_{c}"]) for c in range(10)] for r in rows])
    model = ladder.load(exported)
    assert (model.family, model.num_classes, model.input_dim) == ("ladder", 10, 784)
    proba = model.probabilities(images)
    # The CLI prints six decimals.
    np.testing.assert_allclose(proba, printed, rtol=0, atol=5.1e-7)
    assert [int(r["label"]) for r in rows] == list(np.argmax(proba, axis=1))
    # The run directory and its export are one network.
    np.testing.assert_array_equal(ladder.load(cli_run).probabilities(images), proba)


def test_a_fitted_estimator_exports_and_loads_back(tmp_path, mnist):
    X, y, Xt, _ = mnist
    clf = ladder.LadderClassifier(preset=PRESET, epochs=1).fit(X, y, seed=4, progress=False)
    clf.export(tmp_path / "fit.safetensors")
    back = ladder.load(tmp_path / "fit.safetensors")
    np.testing.assert_array_equal(back.probabilities(Xt[:50]), clf.predict_proba(Xt[:50]))


def test_train_writes_the_run_that_read_run_reads(tmp_path):
    out = tmp_path / "run"
    summary = ladder.train({"preset": PRESET, "epochs": 1, "seed": 2}, out)
    assert summary == json.loads((out / "summary.json").read_text())
    run = ladder.read_run(out)
    assert (run.method, run.config["epochs"], run.config["seed"]) == ("ladder", 1, 2)
    assert run.summary == summary and len(run.history) == 1
    assert run.history[0]["cost"]["total"] == summary["final_cost"]
    # A finished run is read back, not retrained, when resumed.
    assert ladder.train({"preset": PRESET, "epochs": 1, "seed": 2}, out, resume=True) == summary
    toml = tmp_path / "c.toml"
    toml.write_text(f'preset = "{PRESET}"\nepochs = 1\nseed = 2\n')
    again = ladder.train(toml, tmp_path / "again")
    assert again["test_error_percent"] == summary["test_error_percent"]
    assert again["final_cost"] == summary["final_cost"]


def test_robustness_rows_are_the_cli_tables(tmp_path, mnist, cli_run):
    _, _, Xt, yt = mnist
    settings = dict(attacks=["fgsm", "pgd"], epsilons=[0.05, 0.1, 0.2], norm="linf",
                    fgsm_epsilons=[0.0, 0.1, 0.3], sigmas=[0.0, 0.5], examples=200, seed=1,
                    pgd_steps=10)
    rows = ladder.robustness(ladder.load(cli_run), Xt, yt, **settings)
    assert set(rows) == {"table", "perturbation", "norm", "level", "accuracy_percent"}
    table = list(zip(rows["table"], rows["perturbation"], rows["level"],
                     rows["accuracy_percent"]))
    acc = {(t, p, lvl): a for t, p, lvl, a in table}
    clean = acc[("attacks", "none", 0.0)]
    model = ladder.load(cli_run)
    predicted = np.argmax(model.probabilities(Xt[:200]), axis=1)
    assert clean == pytest.approx(100 * np.mean(predicted == yt[:200]))
    for eps_lo, eps_hi in [(0.05, 0.1), (0.1, 0.2)]:
        for attack in ("fgsm", "pgd", "worst-case"):
            assert acc[("attacks", attack, eps_hi)] <= acc[("attacks", attack, eps_lo)]
    for eps in (0.05, 0.1, 0.2):
        worst = acc[("attacks", "worst-case", eps)]
        assert worst <= min(acc[("attacks", "fgsm", eps)], acc[("attacks", "pgd", eps)])
        assert acc[("attacks", "fgsm", eps)] <= clean
    # The CLI's CSV tables, rounded to two decimals, hold the same numbers.
    out = tmp_path / "rob"
    run_cli("robustness", str(cli_run), "--attacks", "fgsm,pgd",
            "--attack-epsilons", "0.05,0.1,0.2", "--epsilons", "0,0.1,0.3", "--sigmas", "0,0.5",
            "--attack-examples", "200", "--pgd-steps", "10", "--seed", "1", "--out", str(out))
    cli_rows = {}
    for r in csv.DictReader((out / "attacks.csv").open()):
        cli_rows[("attacks", r["attack"], float(r["epsilon"]))] = float(r["accuracy_percent"])
    for r in csv.DictReader((out / "robustness.csv").open()):
        cli_rows[("thesis", r["perturbation"], float(r["level"]))] = float(r["accuracy_percent"])
    assert set(cli_rows) == set(acc)
    for key, value in cli_rows.items():
        assert acc[key] == pytest.approx(value, abs=0.0051), key


def test_ctrl_c_stops_a_fit_with_keyboard_interrupt(tmp_path):
    code = (
        "import ladder\n"
        "X, y, _, _ = ladder.mnist_10k()\n"
        "print('ready', flush=True)\n"
        f"ladder.LadderClassifier(preset='{PRESET}', epochs=200).fit(X, y, progress=False)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(2)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    # Stopped within a step or so, not after 200 epochs.
    assert time.monotonic() - started < 30
    assert proc.returncode != 0
    assert "KeyboardInterrupt: interrupted: the fit was stopped" in err


def test_ctrl_c_stops_train_with_its_state_saved(tmp_path):
    out = tmp_path / "run"
    code = (
        "import ladder\n"
        "print('ready', flush=True)\n"
        f"ladder.train({{'preset': '{PRESET}', 'epochs': 200}}, {str(out)!r})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        while not (out / "metrics.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert "KeyboardInterrupt" in err and "continue with" in err, err
    assert (out / "checkpoint.bin").exists()
    assert not (out / "summary.json").exists()
    assert ladder.read_run(out).summary is None

"""Fixtures of the package's tests: the embedded data, the CLI built beside the package (the
reference its numbers are checked against) and one CLI run shared by several tests."""

import json
import os
import subprocess
from pathlib import Path

import pytest

import ladder

ROOT = Path(__file__).resolve().parents[2]

# The CLI run the package's fit must reproduce: 100 labels, 2 epochs, seed 1.
PRESET = "mnist-100-full"
EPOCHS = 2
SEED = 1


def cli_path() -> Path:
    """The `ladder` binary: $LADDER_BIN, else the release build of this checkout."""
    path = Path(os.environ.get("LADDER_BIN", ROOT / "target" / "release" / "ladder"))
    if not path.is_file():
        pytest.fail(
            f"no ladder binary at {path}: build it with `cargo build --release` (or set "
            "LADDER_BIN); the package's numbers are checked against it"
        )
    return path


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([str(cli_path()), *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(f"ladder {' '.join(args)} failed:\n{done.stderr}")
    return done


@pytest.fixture(scope="session")
def mnist():
    return ladder.mnist_10k()


@pytest.fixture(scope="session")
def cli_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    run_cli("train", "--preset", PRESET, "--epochs", str(EPOCHS), "--seed", str(SEED),
            "--out", str(out), "--quiet")
    return out


def metrics_lines(run: Path) -> list:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]

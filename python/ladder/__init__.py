"""Semi-supervised and noise-robust classifier training (Ladder networks, VAT, the Pi-model,
Mean Teacher, adversarial noise) from Python: the ``ladder`` crate's training loop, numbers
and files, numpy in and numpy out.

    import ladder
    X, y, X_test, y_test = ladder.mnist_10k()
    clf = ladder.LadderClassifier(preset="mnist-100-full", epochs=10)
    clf.fit(X, y, seed=1)           # 100 labels drawn as `ladder train` draws them
    clf.score(X_test, y_test)

Labels follow scikit-learn's semi-supervised convention: ``-1`` marks an unlabelled example.
Pixels may be ``uint8`` (scaled by 1/255, as the IDX loader does) or ``float32`` (taken as they
are); other float arrays are converted to float32.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

import numpy as np

from . import _ladder
from ._ladder import Model, methods, presets

__all__ = [
    "LadderClassifier",
    "Model",
    "Run",
    "load",
    "methods",
    "mnist_10k",
    "presets",
    "read_run",
    "robustness",
    "train",
]

__version__ = _ladder.__version__

PathLike = Union[str, "os.PathLike[str]"]


def _pixels(X: Any, name: str) -> np.ndarray:
    """A C-contiguous uint8 or float32 array of ``X`` (other floats become float32)."""
    a = np.asarray(X)
    if a.dtype == np.uint8 or a.dtype == np.float32:
        return np.ascontiguousarray(a)
    if np.issubdtype(a.dtype, np.floating):
        return np.ascontiguousarray(a, dtype=np.float32)
    raise TypeError(
        f"{name} must hold uint8 pixels (0-255) or floats, not {a.dtype}: integer pixels "
        "are ambiguous (convert 0-255 values with .astype(np.uint8))"
    )


def _labels(y: Any, name: str) -> np.ndarray:
    a = np.asarray(y)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, not of shape {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        if a.size and not np.all(np.equal(np.mod(a, 1), 0)):
            raise ValueError(f"{name} must hold integer class labels (or -1 for unlabelled)")
    return np.ascontiguousarray(a, dtype=np.int64)


def mnist_10k() -> tuple:
    """The embedded MNIST-10k ``(X_train, y_train, X_test, y_test)``: 8,000 + 2,000 images of
    shape (28, 28), float32 in [0, 1] exactly as ``ladder train`` reads them, int64 labels."""
    return _ladder.mnist_10k()


class _Progress:
    """Shows a fit's steps with tqdm when it is installed (or calls ``callback``)."""

    def __init__(self, progress: Union[bool, Callable[[dict], Any]], epochs: int):
        self.callback = progress if callable(progress) else None
        self.bar = None
        self.epochs = epochs
        self.enabled = bool(progress)
        self.tqdm = None
        if self.enabled and self.callback is None:
            try:
                from tqdm.auto import tqdm

                self.tqdm = tqdm
            except ImportError:
                self.tqdm = None

    def step(self, epoch: int, step: int, steps: int, message: str) -> None:
        if self.callback is not None:
            self.callback(
                {"epoch": epoch, "epochs": self.epochs, "step": step, "steps": steps,
                 "message": message}
            )
            return
        if self.tqdm is None:
            return
        if self.bar is None or step == 1:
            if self.bar is not None:
                self.bar.close()
            self.bar = self.tqdm(total=steps, desc=f"epoch {epoch}/{self.epochs}", leave=False)
        self.bar.update(1)
        if step % 10 == 0 or step == steps:
            self.bar.set_postfix_str(message, refresh=False)

    def epoch(self, line: str) -> None:
        if self.callback is not None:
            self.callback({"line": line})
        elif self.tqdm is not None:
            self.tqdm.write(line)
        elif self.enabled:
            print(line, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class LadderClassifier:
    """A scikit-learn-style estimator over the crate's one training loop.

    ``preset`` names a configuration of the papers (``ladder.presets()``; ``None``: the full
    Ladder on MNIST with 100 labels), ``method`` the semi-supervised method trained on its
    network (``ladder.methods()``: ladder, vat, vat-entmin, lvan, lvan-lw, pi, mean-teacher),
    and every other keyword a field of the configuration (``epochs``, ``lr``, ``batch_size``,
    ``labeled_samples``, ``denoising_cost_x``, ...), as ``ladder train --FIELD`` takes them.
    The same preset, method, settings, seed and data give the numbers ``ladder train`` gives.
    """

    def __init__(self, preset: Optional[str] = None, method: str = "ladder",
                 device: str = "cpu", **settings: Any):
        self.preset = preset
        self.method = method
        self.device = device
        self.settings = dict(settings)

    # scikit-learn's estimator protocol (clone, grid search) without depending on it.
    def get_params(self, deep: bool = True) -> dict:
        return {"preset": self.preset, "method": self.method, "device": self.device,
                **self.settings}

    def set_params(self, **params: Any) -> "LadderClassifier":
        for key in ("preset", "method", "device"):
            if key in params:
                setattr(self, key, params.pop(key))
        self.settings.update(params)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"LadderClassifier({args})"

    def config(self) -> dict:
        """The configuration ``fit`` would train, resolved and checked."""
        text = _ladder.resolve_config(json.dumps(self.settings), self.preset, self.method)
        return json.loads(text)

    def fit(self, X: Any, y: Any, X_unlabelled: Any = None, *, seed: Optional[int] = None,
            eval_set: Optional[tuple] = None,
            progress: Union[bool, Callable[[dict], Any]] = True) -> "LadderClassifier":
        """Trains on ``X`` with labels ``y`` (``-1``: unlabelled) and the unlabelled
        ``X_unlabelled``. With every label known and no ``X_unlabelled``, the configuration's
        ``labeled_samples`` labels are drawn from ``X`` (class-balanced, seeded) and all of ``X``
        is unlabelled data, as ``ladder train`` does with its training set; otherwise the
        labelled examples are those given. ``eval_set=(X_test, y_test)`` reports the test error
        after evaluated epochs (``history_``) and at the end (``summary_``). ``seed`` overrides
        the configuration's. ``progress``: a bar (tqdm, when installed), False, or a callable
        given a dict per step and per epoch. The GIL is released while training; Ctrl-C stops
        it with KeyboardInterrupt.
        """
        settings = dict(self.settings)
        if seed is not None:
            settings["seed"] = int(seed)
        y = _labels(y, "y")
        partial = X_unlabelled is not None or bool(np.any(y == -1))
        if partial and "labeled_samples" not in settings:
            # The labelled examples are the ones given: the configuration says how many.
            settings["labeled_samples"] = int(np.count_nonzero(y != -1))
        eval_x = eval_y = None
        if eval_set is not None:
            if len(eval_set) != 2:
                raise ValueError("eval_set must be a pair (X, y)")
            eval_x, eval_y = _pixels(eval_set[0], "eval_set X"), _labels(eval_set[1], "eval_set y")
        X = _pixels(X, "X")
        xu = None if X_unlabelled is None else _pixels(X_unlabelled, "X_unlabelled")
        epochs = int(json.loads(
            _ladder.resolve_config(json.dumps(settings), self.preset, self.method))["epochs"])
        shown = _Progress(progress, epochs)
        try:
            model, config, summary, history = _ladder.fit(
                json.dumps(settings), self.preset, self.method, X, y, xu, eval_x, eval_y,
                self.device, shown.step, shown.epoch)
        finally:
            shown.close()
        self.model_ = model
        self.config_ = json.loads(config)
        self.summary_ = json.loads(summary)
        self.history_ = json.loads(history)
        self.classes_ = np.arange(model.num_classes)
        self.n_features_in_ = model.input_dim
        return self

    def _model(self) -> Model:
        model = getattr(self, "model_", None)
        if model is None:
            raise ValueError("this LadderClassifier is not fitted yet: call fit first")
        return model

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, ``(n, n_classes)`` float32."""
        return self._model().probabilities(_pixels(X, "X"))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each example."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X: Any, y: Any) -> float:
        """Mean accuracy on ``(X, y)``."""
        return float(np.mean(self.predict(X) == _labels(y, "y")))

    def export(self, path: PathLike) -> None:
        """Writes the fitted network as a ``ladder-export/2`` safetensors file (``ladder
        predict``, ``ladder.load``)."""
        self._model().export(os.fspath(path))


def load(path: PathLike, device: str = "cpu") -> Model:
    """The network of an exported ``.safetensors`` file or a finished run directory (Ladder,
    plain or semantic): ``.probabilities(X)``, ``.export(path)``, ``.num_classes``."""
    return _ladder.load(os.fspath(path), device)


class Run:
    """A run directory read back: ``method``, ``config``, ``summary`` (``None`` while
    unfinished) and ``history`` (its ``metrics.jsonl``)."""

    def __init__(self, path: PathLike):
        self.path = os.fspath(path)
        run = json.loads(_ladder.read_run(self.path))
        self.method: str = run["method"]
        self.config: dict = run["config"]
        self.summary: Optional[dict] = run["summary"]
        self.history: list = run["epochs"]

    def model(self, device: str = "cpu") -> Model:
        return load(self.path, device)

    def __repr__(self) -> str:
        return f"Run({self.path!r}, method={self.method!r})"


def read_run(path: PathLike) -> Run:
    return Run(path)


def train(config: Union[Mapping[str, Any], PathLike, None], out_dir: PathLike, *,
          data: Optional[PathLike] = None, seeds: Optional[Sequence[int]] = None,
          force: bool = False, resume: bool = False, quiet: bool = True,
          device: str = "cpu") -> dict:
    """``ladder train``: the run of ``config`` in ``out_dir``, returning its summary. ``config``
    is a dict of configuration fields (``preset`` and ``method`` keys choose the base), a
    TOML file's path, or ``None`` (the defaults); ``data`` a data path as ``--data`` takes it
    (the embedded MNIST-10k when ``None``); ``seeds`` runs one run per seed under ``out_dir``.
    """
    if config is None:
        settings: dict = {}
    elif isinstance(config, Mapping):
        settings = dict(config)
    else:
        settings = _toml_settings(os.fspath(config))
    preset = settings.pop("preset", None)
    method = settings.pop("method", "ladder")
    summary = _ladder.train(
        json.dumps(settings), preset, method, os.fspath(out_dir),
        None if data is None else os.fspath(data),
        None if seeds is None else [int(s) for s in seeds], force, resume, quiet, device)
    return json.loads(summary)


def _toml_settings(path: str) -> dict:
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib  # type: ignore[no-redef]
    with open(path, "rb") as f:
        return tomllib.load(f)


def robustness(model: Union[Model, LadderClassifier], X: Any, y: Any, *,
               attacks: Iterable[str] = ("fgsm", "pgd", "apgd", "square"),
               epsilons: Iterable[float] = (0.1, 0.3), norm: str = "linf",
               fgsm_epsilons: Iterable[float] = (0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3),
               sigmas: Iterable[float] = (0, 0.1, 0.2, 0.3, 0.4, 0.5),
               examples: Optional[int] = None, seed: int = 1, pgd_steps: int = 40,
               pgd_restarts: int = 1, apgd_steps: int = 100,
               square_queries: int = 1000) -> dict:
    """``ladder robustness`` for one model on ``(X, y)``: accuracy (%) under the attacks of
    the clipped threat model (``attacks`` at radii ``epsilons`` in ``norm``, with the clean
    accuracy and the per-example worst case), and the thesis 004's unclipped FGSM
    (``fgsm_epsilons``) and Gaussian noise (``sigmas``). Returns a dict of columns
    (``table``, ``perturbation``, ``norm``, ``level``, ``accuracy_percent``):
    ``pandas.DataFrame(ladder.robustness(...))``. The defaults are ``ladder robustness``'s.
    """
    if isinstance(model, LadderClassifier):
        model = model._model()
    rows = json.loads(_ladder.robustness(
        model, _pixels(X, "X"), _labels(y, "y"), list(attacks), [float(e) for e in epsilons],
        norm, [float(e) for e in fgsm_epsilons], [float(s) for s in sigmas], examples,
        int(seed), int(pgd_steps), int(pgd_restarts), int(apgd_steps), int(square_queries)))
    columns = ("table", "perturbation", "norm", "level", "accuracy_percent")
    return {c: [r[c] for r in rows] for c in columns}

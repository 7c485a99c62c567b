"""Types of the native module ``ladder._ladder`` (python/src/lib.rs)."""

from typing import Callable, Optional

import numpy as np
import numpy.typing as npt

__version__: str

class Model:
    """A trained classifier of any family, ready to predict."""

    @property
    def num_classes(self) -> int: ...
    @property
    def input_dim(self) -> int: ...
    @property
    def family(self) -> str: ...
    def probabilities(self, x: npt.NDArray[np.uint8] | npt.NDArray[np.float32]) -> npt.NDArray[np.float32]: ...
    def export(self, path: str) -> None: ...

def fit(
    settings: str,
    preset: Optional[str],
    method: str,
    x: npt.NDArray[np.uint8] | npt.NDArray[np.float32],
    y: npt.NDArray[np.int64],
    x_unlabelled: Optional[npt.NDArray[np.uint8] | npt.NDArray[np.float32]] = None,
    eval_x: Optional[npt.NDArray[np.uint8] | npt.NDArray[np.float32]] = None,
    eval_y: Optional[npt.NDArray[np.int64]] = None,
    device: str = "cpu",
    on_step: Optional[Callable[[int, int, int, str], object]] = None,
    on_epoch: Optional[Callable[[str], object]] = None,
) -> tuple[Model, str, str, str]: ...
def train(
    settings: str,
    preset: Optional[str],
    method: str,
    out: str,
    data: Optional[str] = None,
    seeds: Optional[list[int]] = None,
    force: bool = False,
    resume: bool = False,
    quiet: bool = True,
    device: str = "cpu",
) -> str: ...
def load(path: str, device: str = "cpu") -> Model: ...
def read_run(dir: str) -> str: ...
def robustness(
    model: Model,
    x: npt.NDArray[np.uint8] | npt.NDArray[np.float32],
    y: npt.NDArray[np.int64],
    attacks: list[str],
    epsilons: list[float],
    norm: str,
    fgsm_epsilons: list[float],
    sigmas: list[float],
    examples: Optional[int] = None,
    seed: int = 1,
    pgd_steps: int = 40,
    pgd_restarts: int = 1,
    apgd_steps: int = 100,
    square_queries: int = 1000,
) -> str: ...
def mnist_10k() -> tuple[
    npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.int64]
]: ...
def presets() -> list[str]: ...
def methods() -> list[str]: ...
def resolve_config(settings: str, preset: Optional[str] = None, method: str = "ladder") -> str: ...

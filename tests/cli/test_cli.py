"""The real `digitrec` commands through click's CliRunner, on tiny data and tiny models."""

from __future__ import annotations

import gzip
import json
import logging
import re
import shutil
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner, Result
from drawing import draw_digit, draw_strokes, rgba_canvas
from PIL import Image
from ports import free_port
from pydantic import ValidationError

from digitrec.cli import Commands, main, training
from digitrec.config import get_settings
from digitrec.data import IDX_FILES, VALIDATION_SIZE, load_mnist
from digitrec.inference import Predictor, load_predictor
from digitrec.schemas import FeedbackIn

README = Path(__file__).resolve().parents[2] / "README.md"
N_TEST = 300  # digits in the fake MNIST test split


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def invoke_catching(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def walk_commands(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """(path, command) for every command under `group`, groups included."""
    for name, command in sorted(group.commands.items()):
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from walk_commands(command, (*prefix, name))


ALL_COMMANDS = list(walk_commands(main))
LEAF_COMMANDS = [path for path, c in ALL_COMMANDS if not isinstance(c, click.Group)]
GROUPS = [path for path, c in ALL_COMMANDS if isinstance(c, click.Group)]


def bar_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n (28, 28) uint8 bars whose slant follows the label: cheap stand-ins for digits."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    rows = np.arange(4, 24)
    for i, label in enumerate(labels):
        images[i, rows, np.clip(9 + (rows - 4) * label // 9, 0, 27)] = 255
    return images, labels


def digit_png(path: Path) -> Path:
    """A 280x280 PNG of a seven, white on black."""
    Image.fromarray(draw_digit(7)).save(path)
    return path


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    raw = header + array.tobytes()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


@pytest.fixture(scope="module")
def fake_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MNIST cache folder whose mnist.npz holds bars instead of digits."""
    folder = tmp_path_factory.mktemp("cache")
    train_x, train_y = bar_digits(VALIDATION_SIZE + 600, seed=0)
    test_x, test_y = bar_digits(N_TEST, seed=1)
    np.savez(folder / "mnist.npz", train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y)
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, fake_cache: Path) -> tuple[Path, Result]:
    """A folder with lenet5.pt and lenet5.onnx from a dry run of `digitrec train`."""
    out = tmp_path_factory.mktemp("trained")
    result = invoke(
        "train", "--model", "lenet5", "--dry-run", "--epochs", "1",
        "--out-dir", out, "--cache-dir", fake_cache,
    )  # fmt: skip
    return out, result


# --- help and the README ----------------------------------------------------------------------


def test_main_help_lists_every_command() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for name in main.commands:
        assert re.search(rf"^\s+{name}\s", result.output, re.MULTILINE), name


@pytest.mark.parametrize("path", LEAF_COMMANDS, ids=" ".join)
def test_command_help_has_a_summary_and_an_example(path: tuple[str, ...]) -> None:
    command = dict(ALL_COMMANDS)[path]
    summary = (command.help or "").strip().splitlines()[0] if command.help else ""

    result = invoke(*path, "--help")

    assert result.exit_code == 0 and result.output.startswith("Usage:")
    flowed = " ".join(result.output.split())  # click wraps long lines
    assert summary.endswith(".") and summary in flowed  # a one-line summary
    assert "Example" in result.output
    assert f"digitrec {' '.join(path)}" in result.output  # the example runs this command


@pytest.mark.parametrize("path", GROUPS, ids=" ".join)
def test_group_help_lists_its_commands(path: tuple[str, ...]) -> None:
    result = invoke(*path, "--help")
    group = main
    for name in path:
        group = group.commands[name]  # type: ignore[assignment]
    assert result.exit_code == 0
    for name in group.commands:  # type: ignore[attr-defined]
        assert name in result.output


def test_version_option_prints_the_version() -> None:
    from digitrec import __version__

    result = invoke("--version")
    assert result.exit_code == 0 and __version__ in result.output


def _readme_commands_section() -> str:
    assert README.is_file(), f"{README} is missing; it must list the commands"
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^## Commands\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, "README.md has no '## Commands' section"
    return match.group(1)


def test_readme_lists_every_command() -> None:
    section = _readme_commands_section()
    for path in LEAF_COMMANDS:
        assert f"digitrec {' '.join(path)}" in section, f"README misses `digitrec {' '.join(path)}`"


def test_readme_lists_no_command_that_does_not_exist() -> None:
    mentioned = set(re.findall(r"`digitrec ([a-z][a-z-]*)", _readme_commands_section()))
    assert mentioned, "README's command list names no `digitrec ...` command"
    assert mentioned <= set(main.commands), mentioned - set(main.commands)


# --- predict ----------------------------------------------------------------------------------


def test_predict_prints_one_json_line_per_file(tmp_path: Path, tiny_model_dir: Path) -> None:
    files = [digit_png(tmp_path / "a.png"), digit_png(tmp_path / "b.png")]

    result = invoke("predict", *files, "--model-dir", tiny_model_dir)

    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["file"] for line in lines] == [str(f) for f in files]
    for line in lines:
        assert set(line) == {
            "file",
            "digit",
            "confidence",
            "probabilities",
            "digit_probability",
            "is_digit",
            "model",
        }
        assert 0 <= line["digit"] <= 9 and line["model"] == "default"
        # The tiny model has no "not a digit" detector: it cannot tell, and keeps every drawing.
        assert line["digit_probability"] is None and line["is_digit"] is True
        assert len(line["probabilities"]) == 10
        assert sum(line["probabilities"]) == pytest.approx(1.0, abs=1e-4)
        assert line["confidence"] == max(line["probabilities"])


def test_predict_says_when_the_shipped_default_refuses_a_letter(tmp_path: Path) -> None:
    letter_a = [[(60.0, 230.0), (140.0, 50.0), (220.0, 230.0)], [(95.0, 165.0), (185.0, 165.0)]]
    path = tmp_path / "a.png"
    Image.fromarray(rgba_canvas(draw_strokes(letter_a, supersample=4))).save(path)

    result = invoke("predict", path)

    line = json.loads(result.output)
    assert line["is_digit"] is False
    assert 0.0 <= line["digit_probability"] < load_predictor("default").digit_threshold


def test_predict_reports_a_bad_file_and_exits_1(tmp_path: Path, tiny_model_dir: Path) -> None:
    good = digit_png(tmp_path / "good.png")
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"this is not a png at all")
    blank = tmp_path / "blank.png"
    Image.new("L", (280, 280), 0).save(blank)
    missing = tmp_path / "missing.png"

    result = invoke_catching(
        "predict", good, garbage, blank, missing, "--model-dir", tiny_model_dir
    )

    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["file"] for line in lines] == [str(good), str(garbage), str(blank), str(missing)]
    assert "digit" in lines[0]
    for line in lines[1:]:
        assert set(line) == {"file", "error"} and line["error"]


def test_predict_uses_the_chosen_model(tmp_path: Path, tiny_model_dir: Path) -> None:
    file = digit_png(tmp_path / "a.png")
    result = invoke("predict", file, "--model", "lenet5", "--model-dir", tiny_model_dir)
    assert json.loads(result.output)["model"] == "lenet5"


def test_predict_names_the_known_models_when_asked_for_another(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    file = digit_png(tmp_path / "a.png")
    result = invoke_catching("predict", file, "--model", "resnet", "--model-dir", tiny_model_dir)
    assert result.exit_code != 0
    assert "resnet" in result.output and "lenet5" in result.output  # a message, not a traceback


# --- data, train, export, evaluate ------------------------------------------------------------


def test_data_caches_idx_files(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    idx.mkdir()
    sizes = {"train": 12, "t10k": 5}
    for key, stem in IDX_FILES.items():
        images, labels = bar_digits(sizes[stem.split("-")[0]], seed=len(key))
        array = images if key.endswith("_x") else labels
        write_idx(idx / (f"{stem}.gz" if key.startswith("train") else stem), array)

    result = invoke("data", "--idx-dir", idx, "--cache-dir", tmp_path / "cache")

    assert result.exit_code == 0
    assert "12 training, 5 test digits" in result.output
    mnist = load_mnist(tmp_path / "cache")
    assert mnist.train_x.shape == (12, 28, 28) and mnist.test_y.shape == (5,)


def test_data_explains_a_missing_idx_file(tmp_path: Path) -> None:
    result = invoke_catching("data", "--idx-dir", tmp_path, "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 1
    assert "train-images-idx3-ubyte" in result.output
    assert not (tmp_path / "cache" / "mnist.npz").exists()


def test_train_dry_run_writes_a_checkpoint_and_an_onnx_file(
    trained: tuple[Path, Result],
) -> None:
    out, result = trained
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["lenet5.onnx", "lenet5.pt"]
    assert "temperature" in result.output
    assert f"DIGITREC_MODEL_DIR={out}" in result.output  # how to serve it
    gap = float(re.search(r"max logit gap ([0-9.e+-]+)", result.output).group(1))  # type: ignore[union-attr]
    assert gap < 1e-4


def test_train_refuses_an_unknown_model(fake_cache: Path, tmp_path: Path) -> None:
    result = invoke_catching("train", "--model", "resnet", "--cache-dir", fake_cache)
    assert result.exit_code == 2 and "--model" in result.output


def package_files() -> dict[str, bytes]:
    """Every file of the installed package and of the checkout's models/, by path."""
    folders = [
        Path(str(resources.files("digitrec"))),
        Path(__file__).resolve().parents[2] / "models",
    ]
    return {
        str(path): path.read_bytes()
        for folder in folders
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """DIGITREC_DATA_DIR in a temporary folder, also the working directory."""
    monkeypatch.setenv("DIGITREC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield tmp_path / "data"
    get_settings.cache_clear()


@pytest.mark.parametrize(
    "command",
    [
        ("train", "--model", "lenet5", "--dry-run"),
        ("evaluate", "--model", "lenet5"),
        ("examples", "--out", "examples.png"),
        ("learn", "--dry-run"),
    ],
    ids=lambda command: command[0],
)
def test_a_command_needing_mnist_says_to_fetch_it_first(
    command: tuple[str, ...], data_dir: Path
) -> None:
    result = invoke_catching(*command)

    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # click's usage error, not a traceback
    assert f"no MNIST cache at {data_dir / 'mnist'}" in result.output
    assert "run `digitrec data` first" in result.output


def test_an_unreachable_database_is_an_error_message_not_a_traceback(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nobody = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/x"  # nothing listens there
    monkeypatch.setenv("DIGITREC_DATABASE_URL", nobody)
    get_settings.cache_clear()

    for command in (("db", "upgrade"), ("models", "list")):
        result = invoke_catching(*command)

        assert result.exit_code == 1, result.output
        assert isinstance(result.exception, SystemExit)
        assert "Error: cannot migrate the database: connection failed" in result.output


def test_an_invalid_setting_is_named_in_one_line(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGITREC_DATABASE_URL", "mysql://app@db/digitrec")
    get_settings.cache_clear()

    result = invoke_catching("models", "list")

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert result.output.startswith("Error: invalid setting DIGITREC_DATABASE_URL: ")


def test_a_validation_error_of_anything_but_the_settings_stays_an_error() -> None:
    group = Commands()

    @group.command()
    def broken() -> None:
        FeedbackIn.model_validate({"actual": 12})  # a bug in a command, not a setting

    result = CliRunner().invoke(group, ["broken"])

    assert isinstance(result.exception, ValidationError)
    assert "invalid setting" not in result.output


@pytest.fixture
def fake_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A source checkout whose packaged models folder stands in for the real one."""
    root = tmp_path / "checkout"
    (root / "src" / "digitrec" / "assets" / "models").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'digitrec'\n")
    monkeypatch.setattr(training, "shipped_model_dir", lambda: root / "src/digitrec/assets/models")
    return root


def test_train_logs_each_epoch_and_writes_to_the_data_dir_by_default(
    fake_cache: Path, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = package_files()

    with caplog.at_level(logging.INFO, logger="digitrec"):
        result = invoke(
            "train", "--model", "lenet5", "--dry-run", "--epochs", "2", "--cache-dir", fake_cache
        )

    assert result.exit_code == 0, result.output
    models = data_dir / "models"
    assert sorted(p.name for p in models.iterdir()) == ["lenet5.onnx", "lenet5.pt"]
    assert "epoch 1: loss" in caplog.text and "epoch 2: loss" in caplog.text
    assert "validation loss" in caplog.text
    assert package_files() == before  # neither the package nor the checkout's models/
    assert not (data_dir.parent / "models").exists()  # nor models/ in the working directory


def test_train_into_package_writes_the_checkout_models(
    fake_cache: Path, fake_checkout: Path
) -> None:
    result = invoke(
        "train", "--model", "lenet5", "--dry-run", "--epochs", "1", "--into-package",
        "--cache-dir", fake_cache,
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert (fake_checkout / "models" / "lenet5.pt").is_file()
    assert (fake_checkout / "src/digitrec/assets/models/lenet5.onnx").is_file()


@pytest.mark.parametrize("command", ["train", "export"])
def test_into_package_refuses_an_installed_package(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "lib" / "python3.11" / "site-packages" / "digitrec" / "assets" / "models"
    site.mkdir(parents=True)
    monkeypatch.setattr(training, "shipped_model_dir", lambda: site)

    result = invoke_catching(command, "--model", "lenet5", "--into-package")

    assert result.exit_code == 1 and "source checkout" in result.output
    assert not any(site.iterdir())


@pytest.mark.parametrize("command", ["train", "export"])
def test_out_dir_and_into_package_exclude_each_other(command: str, tmp_path: Path) -> None:
    result = invoke_catching(command, "--model", "lenet5", "--out-dir", tmp_path, "--into-package")
    assert result.exit_code == 2 and "--into-package" in result.output
    assert not any(tmp_path.iterdir())


def test_export_writes_onnx_from_a_checkpoint(trained: tuple[Path, Result], tmp_path: Path) -> None:
    out, _ = trained
    target = tmp_path / "again"

    result = invoke_catching(
        "export", "--model", "lenet5", "--checkpoint", out / "lenet5.pt", "--out-dir", target
    )

    assert result.exit_code == 0, result.output + repr(result.exception)
    assert sorted(p.name for p in target.iterdir()) == ["lenet5.onnx"]
    assert "max logit gap" in result.output


def test_export_reads_and_writes_the_data_dir_by_default(
    trained: tuple[Path, Result], data_dir: Path
) -> None:
    out, _ = trained
    (data_dir / "models").mkdir(parents=True)
    shutil.copy(out / "lenet5.pt", data_dir / "models" / "lenet5.pt")
    before = package_files()

    result = invoke("export", "--model", "lenet5")

    assert result.exit_code == 0, result.output
    assert (data_dir / "models" / "lenet5.onnx").is_file()
    assert package_files() == before


def test_export_explains_a_missing_checkpoint(data_dir: Path) -> None:
    result = invoke_catching("export", "--model", "lenet5")
    assert result.exit_code == 1 and "no checkpoint" in result.output
    assert str(data_dir / "models" / "lenet5.pt") in result.output


def test_export_into_package_reads_and_writes_the_checkout(
    trained: tuple[Path, Result], fake_checkout: Path
) -> None:
    out, _ = trained
    (fake_checkout / "models").mkdir()
    shutil.copy(out / "lenet5.pt", fake_checkout / "models" / "lenet5.pt")

    result = invoke("export", "--model", "lenet5", "--into-package")

    assert result.exit_code == 0, result.output
    assert (fake_checkout / "src/digitrec/assets/models/lenet5.onnx").is_file()


def test_evaluate_prints_the_metrics_as_json(
    trained: tuple[Path, Result], fake_cache: Path
) -> None:
    out, _ = trained

    result = invoke(
        "evaluate", "--model", "lenet5", "--model-dir", out, "--cache-dir", fake_cache, "--json"
    )

    assert result.exit_code == 0
    metrics = json.loads(result.output)
    assert metrics["n"] == N_TEST
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert np.array(metrics["confusion"]).sum() == N_TEST
    assert metrics["latency_ms"]["median"] > 0


def test_evaluate_prints_a_readable_report(trained: tuple[Path, Result], fake_cache: Path) -> None:
    out, _ = trained
    result = invoke("evaluate", "--model", "lenet5", "--model-dir", out, "--cache-dir", fake_cache)
    assert result.exit_code == 0
    assert f"model lenet5: MNIST test, {N_TEST} digits" in result.output
    assert "accuracy" in result.output and "confusion" in result.output


def test_detector_dry_run_adds_not_a_digit_to_a_trained_default(
    fake_cache: Path, tmp_path: Path
) -> None:
    out = tmp_path / "models"
    trained = invoke(
        "train", "--model", "default", "--dry-run", "--epochs", "1",
        "--out-dir", out, "--cache-dir", fake_cache,
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    letters = tmp_path / "letters.jsonl"
    strokes = [[[0, 0], [500, 1000], [1000, 0]]]  # a V
    letters.write_text(
        "".join(
            json.dumps({"label": "V", "writer": f"w{i}", "strokes": strokes}) + "\n"
            for i in range(100)
        )
    )

    result = invoke(
        "detector", "--model", "default", "--dry-run", "--letters", letters,
        "--out-dir", out, "--cache-dir", fake_cache,
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "threshold" in result.output and "letters" in result.output
    predictor = Predictor(out / "default.onnx")
    assert predictor.detects and 0.0 < predictor.digit_threshold < 1.0


def test_detector_refuses_a_model_that_is_not_a_digitnet(
    trained: tuple[Path, Result], fake_cache: Path
) -> None:
    out, _ = trained
    result = invoke_catching(
        "detector", "--model", "lenet5", "--dry-run", "--out-dir", out, "--cache-dir", fake_cache
    )
    assert result.exit_code == 1
    assert "DigitNet" in result.output

"""Learning from corrections, measured with writers the shipped model never saw.

Usage:
    python bench/learn.py PATH/TO/unipen-dev.jsonl [--letters PATH/TO/unipen-dev-letters.jsonl]
                          [--database-url URL] [--workers 2] [--errors FOLDER]

Each writer of the pen-drawn set is one session. A writer's drawings alternate between a
feedback half and a test half (rendered per the set's protocol, seeded). The feedback half is
posted to a live service (`digitrec serve`), correcting every wrong answer and confirming one
right answer in three, as people do on the page. Then `digitrec learn --model default` runs
once (timed); once every worker serves the outcome, the test half is posted again. Printed:
accuracy and errors on the test half before and after, MNIST test before and after (from the
learner's report), the gates' verdict and how long `learn` took; and whether the test half's
errors are the kind corrections can teach (made by a writer who corrected something, repeating
a confusion that writer corrected). With `--errors FOLDER`, a sheet of the test half's wrong
answers before learning and one after show each drawing as the model sees it, with its label,
the answer, and a `*` where its writer corrected something: whether a person would read it as
its label is for a person to judge (the set's README warns of a few noisy labels).

With `--letters`, the same writers' letters that the shipped detector never learnt from (the
measuring side of `negatives.split_by_writer`) join their sessions, halved the same way: the
feedback half is said "not a digit" wherever the page named a digit for it (and one refusal
in three is agreed with); printed: the test half's letters and digits refused before and after.

The sets are only measured on: nothing here goes into the shipped models.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from load import ADMIN, ADMIN_TOKEN, start_server
from PIL import Image
from sheets import write_sheet

from digitrec import negatives
from digitrec.rendering import read_samples, render

SERVE_TIMEOUT_S = 60.0  # a promotion reaches every worker within the registry poll (5 s)


def png(canvas: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


Item = tuple[str, str, int | None]  # (session, PNG as base64, digit; None: not a digit)


def post_all(port: int, items: list[Item], label: bool) -> list[dict[str, Any]]:
    """Post the items; with `label`, correct each wrong answer (a digit named for a letter, a
    digit refused, a digit misread) and agree with one right answer in three. Returns each
    answer."""
    answers = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        for i, (session, image, digit) in enumerate(items):
            answer = http.post("/predict", json={"image": image, "session_id": session}).json()
            answers.append(answer)
            named = answer["prediction"] if answer["is_digit"] else None  # what the page said
            right = named == digit
            if label and (not right or i % 3 == 0):
                said = {"not_a_digit": True} if digit is None else {"actual": digit}
                body = {**said, "session_id": session}
                http.post(f"/predictions/{answer['id']}/feedback", json=body).raise_for_status()
    return answers


def refused(answers: list[dict[str, Any]]) -> str:
    """The share of answers that said "not a digit", with the count."""
    count = sum(not a["is_digit"] for a in answers)
    return f"{count / max(len(answers), 1):.1%} ({count} of {len(answers)})"


def halved(samples: list[dict[str, Any]], rng: np.random.Generator) -> dict[str, list[list[Item]]]:
    """Per writer, their drawings rendered and dealt alternately into a feedback half and a
    test half; a session per writer."""
    halves: dict[str, list[list[Item]]] = defaultdict(lambda: [[], []])
    for sample in samples:
        writer = sample.get("writer", "?")
        session = hashlib.sha256(writer.encode()).hexdigest()[:32]
        half = halves[writer][len(halves[writer][0]) > len(halves[writer][1])]
        label = sample["label"]
        digit = int(label) if str(label).isdigit() else None
        half.append((session, png(render(sample["strokes"], rng)), digit))
    return halves


def confusions(
    items: list[tuple[str, Any, int]], answers: list[int | None]
) -> list[tuple[str, int, int | None]]:
    """(session, digit, answer) of each wrong answer."""
    return [
        (session, digit, answer)
        for (session, _, digit), answer in zip(items, answers, strict=True)
        if answer != digit
    ]


def describe_errors(
    corrected: list[tuple[str, int, int | None]], wrong: list[tuple[str, int, int | None]]
) -> str:
    """Whether the test half's errors are the kind a writer's corrections can teach: made by
    writers who corrected something, and repeating a confusion that writer corrected."""
    correcting = {session for session, _, _ in corrected}
    repeated = set(corrected)
    return (
        f"test-half errors before: {len(wrong)} by {len({s for s, _, _ in wrong})} writers; "
        f"{sum(s in correcting for s, _, _ in wrong)} by a writer who corrected something, "
        f"{sum(e in repeated for e in wrong)} repeating a confusion their writer corrected"
    )


def write_errors(
    path: Path,
    items: list[tuple[str, str, int]],
    answers: list[int | None],
    corrected: list[tuple[str, int, int | None]],
) -> None:
    """A sheet of the wrong answers: label -> answer, `*` where the writer corrected any."""
    correcting = {session for session, _, _ in corrected}
    tiles = [
        (base64.b64decode(image), f"{digit}->{answer}{' *' if session in correcting else ''}")
        for (session, image, digit), answer in zip(items, answers, strict=True)
        if answer != digit
    ]
    write_sheet(path, tiles)


def run_learn(database_url: str, report_path: Path) -> tuple[dict[str, Any], float]:
    """`digitrec learn --model default` as an operator runs it: (its report, seconds taken)."""
    env = {**os.environ, "DIGITREC_DATABASE_URL": database_url, "DIGITREC_ADMIN_TOKEN": ADMIN_TOKEN}
    command = [sys.executable, "-m", "digitrec", "learn", "--model", "default"]
    started = time.perf_counter()
    subprocess.run([*command, "--report", str(report_path)], env=env, check=True)
    seconds = time.perf_counter() - started
    return json.loads(report_path.read_text()), seconds


def print_verdict(report: dict[str, Any]) -> None:
    """The learner's verdict and each gate's reading."""
    print(f"verdict: {'promoted' if report['promoted'] else 'not promoted'}")
    for reason in report["reasons"]:
        print(f"  {reason}")


def serving_version(port: int) -> int | None:
    models = httpx.get(f"http://127.0.0.1:{port}/models", timeout=10).json()
    return next(m["serving"] for m in models if m["name"] == "default")


def wait_until_served(port: int, version: int) -> None:
    """Until every worker serves `version` (each polls the registry on its own, every 5 s)."""
    deadline = time.monotonic() + SERVE_TIMEOUT_S
    while serving_version(port) != version:
        if time.monotonic() > deadline:
            raise SystemExit("the promoted version was not served in time")
        time.sleep(1)
    time.sleep(6)


def digits_of(answers: list[dict[str, Any]]) -> list[int | None]:
    return [answer["prediction"] for answer in answers]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("samples", type=Path)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--errors", type=Path, default=None, help="a folder for the sheets")
    parser.add_argument("--letters", type=Path, default=None, help="the pen-drawn letters")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    halves = halved(read_samples(args.samples), rng)
    feedback = [item for pair in halves.values() for item in pair[0]]
    test = [item for pair in halves.values() for item in pair[1]]
    letters: dict[str, list[list[Item]]] = {}
    if args.letters is not None:  # of the digits' writers, those the detector never learnt
        unseen = negatives.split_by_writer(read_samples(args.letters))[1]
        letters = halved([s for s in unseen if s["writer"] in halves], rng)
    letters_feedback = [item for pair in letters.values() for item in pair[0]]
    letters_test = [item for pair in letters.values() for item in pair[1]]

    data_dir = Path(tempfile.mkdtemp(prefix="digitrec-learn-bench-"))
    url = args.database_url or f"sqlite:///{data_dir / 'bench.sqlite3'}"
    server, port = start_server(url, data_dir, args.workers, None)
    try:
        before = post_all(port, test, label=False)
        letters_before = post_all(port, letters_test, label=False)
        corrected = confusions(feedback, digits_of(post_all(port, feedback, label=True)))
        said_not = post_all(port, letters_feedback, label=True)
        labelled = httpx.get(f"http://127.0.0.1:{port}/stats", headers=ADMIN).json()
        report, learn_s = run_learn(url, data_dir / "learn.json")
        if report["promoted"]:
            wait_until_served(port, report["candidate_version"])
        after = post_all(port, test, label=False)
        letters_after = post_all(port, letters_test, label=False)
    finally:
        server.terminate()
        server.wait(timeout=30)

    if args.errors is not None:
        write_errors(args.errors / "test-half-wrong-before.png", test, digits_of(before), corrected)
        write_errors(args.errors / "test-half-wrong-after.png", test, digits_of(after), corrected)
    wrong_before = confusions(test, digits_of(before))
    errors_before = len(wrong_before)
    errors_after = len(confusions(test, digits_of(after)))
    mnist = {
        k: report["metrics"].get(k, {}).get("mnist_test", {}) for k in ("champion", "candidate")
    }
    print(f"writers {len(halves)}; feedback half {len(feedback)} drawings, test half {len(test)}")
    print(
        f"labelled rows {labelled['confirmed'] + labelled['corrected']} "
        f"({labelled['corrected']} corrections, {labelled['confirmed']} confirmations)"
    )
    print(
        f"test half before: {1 - errors_before / len(test):.2%} ({errors_before} wrong); "
        f"after: {1 - errors_after / len(test):.2%} ({errors_after} wrong); errors "
        f"{(errors_after - errors_before) / max(errors_before, 1):+.0%}"
    )
    print(describe_errors(corrected, wrong_before))
    print(
        f"test-half digits refused as not a digit: before {refused(before)}, after {refused(after)}"
    )
    if letters:
        kept = sum(a["is_digit"] for a in said_not)
        print(
            f"letters of {len(letters)} writers the detector never learnt from: feedback half "
            f"{len(letters_feedback)} ({kept} named a digit and said not to be one), test half "
            f"refused before {refused(letters_before)}, after {refused(letters_after)}"
        )
    for who, measured in mnist.items():
        if measured:
            print(f"MNIST test, {who}: {measured['accuracy']:.2%}")
    print_verdict(report)
    print(f"digitrec learn took {learn_s:.0f} s")


if __name__ == "__main__":
    main()

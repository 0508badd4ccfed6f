"""Learning from corrections, measured with writers the shipped model never saw.

Usage:
    python bench/learn.py PATH/TO/unipen-dev.jsonl [--database-url URL] [--workers 2]

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

The set is only measured on: nothing here goes into the shipped models.
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

from digitrec.rendering import read_samples, render

SERVE_TIMEOUT_S = 60.0  # a promotion reaches every worker within the registry poll (5 s)


def png(canvas: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def post_all(port: int, items: list[tuple[str, str, int]], label: bool) -> list[int | None]:
    """Post (session, image, digit) items; with `label`, correct each wrong answer and confirm
    one right answer in three. Returns each answer's digit."""
    answers = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        for i, (session, image, digit) in enumerate(items):
            answer = http.post("/predict", json={"image": image, "session_id": session}).json()
            answers.append(answer["prediction"])
            if label and (answer["prediction"] != digit or i % 3 == 0):
                body = {"actual": digit, "session_id": session}
                http.post(f"/predictions/{answer['id']}/feedback", json=body).raise_for_status()
    return answers


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("samples", type=Path)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--errors", type=Path, default=None, help="a folder for the sheets")
    args = parser.parse_args()

    samples = read_samples(args.samples)
    rng = np.random.default_rng(args.seed)
    halves: dict[str, list[list[tuple[str, str, int]]]] = defaultdict(lambda: [[], []])
    for sample in samples:
        writer = sample.get("writer", "?")
        session = hashlib.sha256(writer.encode()).hexdigest()[:32]  # one session per writer
        half = halves[writer][len(halves[writer][0]) > len(halves[writer][1])]
        half.append((session, png(render(sample["strokes"], rng)), int(sample["label"])))
    feedback = [item for pair in halves.values() for item in pair[0]]
    test = [item for pair in halves.values() for item in pair[1]]

    data_dir = Path(tempfile.mkdtemp(prefix="digitrec-learn-bench-"))
    url = args.database_url or f"sqlite:///{data_dir / 'bench.sqlite3'}"
    server, port = start_server(url, data_dir, args.workers, None)
    try:
        before = post_all(port, test, label=False)
        corrected = confusions(feedback, post_all(port, feedback, label=True))
        labelled = httpx.get(f"http://127.0.0.1:{port}/stats", headers=ADMIN).json()
        report, learn_s = run_learn(url, data_dir / "learn.json")
        if report["promoted"]:
            deadline = time.monotonic() + SERVE_TIMEOUT_S
            while serving_version(port) != report["candidate_version"]:
                if time.monotonic() > deadline:
                    raise SystemExit("the promoted version was not served in time")
                time.sleep(1)
            time.sleep(6)  # every worker polls the registry on its own (every 5 s)
        after = post_all(port, test, label=False)
    finally:
        server.terminate()
        server.wait(timeout=30)

    if args.errors is not None:
        write_errors(args.errors / "test-half-wrong-before.png", test, before, corrected)
        write_errors(args.errors / "test-half-wrong-after.png", test, after, corrected)
    wrong_before = confusions(test, before)
    errors_before = len(wrong_before)
    errors_after = len(confusions(test, after))
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
    for who, measured in mnist.items():
        if measured:
            print(f"MNIST test, {who}: {measured['accuracy']:.2%}")
    print_verdict(report)
    print(f"digitrec learn took {learn_s:.0f} s")


if __name__ == "__main__":
    main()

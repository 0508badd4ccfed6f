"""How long `digitrec learn` takes on many labelled rows; the target: 5,000 rows in 10 minutes.

Usage:
    python bench/learn_time.py [--rows 5000] [--database-url URL]

Writers are made as in `bench/learn_styles.py` (MNIST validation digits, each writer with a
slant, width, pen and three quirky digits of their own, drawn on a 280x280 slate), 34 digits
each, one session per writer. Every drawing is predicted and logged through the service
in-process, and every answer labelled (each wrong one corrected, each right one confirmed)
until `--rows` rows carry a label. Then `digitrec learn --model default` runs as an operator or
a cron job runs it, against that database, and is timed from start to exit. Printed: the rows,
corrections and sessions, the time `learn` took, its peak memory (the learner's Kubernetes
limit is 3 GiB) and its verdict.

The run is bounded by `FineTuneConfig.max_steps` per member, so its time grows with the rows
only through reading, splitting and measuring them.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from learn import print_verdict, run_learn
from learn_styles import PER_WRITER, QUIRK, draw, writer_style

from digitrec.config import Settings, default_data_dir
from digitrec.data import load_mnist
from digitrec.service import PredictionService, build_service


def label_rows(service: PredictionService, rows: int, seed: int) -> tuple[int, int]:
    """Predict, log and label `rows` drawings of made-up writers: (corrections, sessions)."""
    val_x, val_y = load_mnist(default_data_dir() / "mnist").split("val")
    if rows > len(val_y):
        raise SystemExit(f"at most {len(val_y)} rows: the MNIST validation digits")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(val_y))[:rows]
    corrections = 0
    for start in range(0, rows, PER_WRITER):
        session = hashlib.sha256(f"writer {start}".encode()).hexdigest()[:32]
        style = writer_style(rng, QUIRK)
        for i in order[start : start + PER_WRITER]:
            label = int(val_y[i])
            answer = service.predict(draw(val_x[i], label, style), session_id=session)
            service.submit_feedback(answer.id, label, session_id=session)
            corrections += answer.prediction != label
    return corrections, -(-rows // PER_WRITER)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="digitrec-learn-time-"))
    url = args.database_url or f"sqlite:///{data_dir / 'bench.sqlite3'}"
    service = build_service(Settings(database_url=url, data_dir=data_dir))
    try:
        started = time.perf_counter()
        corrections, sessions = label_rows(service, args.rows, args.seed)
        logged_s = time.perf_counter() - started
    finally:
        service.close()
    print(
        f"labelled rows {args.rows} ({corrections} corrections) in {sessions} sessions, "
        f"logged in {logged_s:.0f} s"
    )

    report, learn_s = run_learn(url, data_dir / "learn.json")
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    print(f"digitrec learn on {args.rows} labelled rows: {learn_s:.0f} s ({learn_s / 60:.1f} min)")
    print(f"its peak resident memory: {peak_mib:.0f} MiB")
    print_verdict(report)


if __name__ == "__main__":
    main()

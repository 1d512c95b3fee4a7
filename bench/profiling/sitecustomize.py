"""Opt-in cProfile for the service processes of a benchmark run (no py-spy here).

``make bench`` starts the platform with this directory on PYTHONPATH and
BENCH_PROFILE_DIR set; Python imports this file at start-up in every service process.
Nothing is measured until the orchestrator sends SIGUSR1 (start profiling); SIGUSR2
stops and writes ``$BENCH_PROFILE_DIR/<service>.prof``. So only the profiled run pays
cProfile's overhead, and the timed runs are untouched.
"""

from __future__ import annotations

import cProfile
import os
import signal
import sys
import time

_DIR = os.environ.get("BENCH_PROFILE_DIR")
_SERVICE = next(
    (a.split(".")[1] for a in sys.argv if a.startswith("services.") and ":create_app" in a),
    None,
)

if _DIR and _SERVICE:
    # CPU time, not wall time: SQLAlchemy's async layer runs on greenlets, and with a wall
    # clock the time a suspended greenlet waits for PostgreSQL lands on the frame that
    # suspended it. With CPU time waiting costs nothing, wherever it is booked.
    _profiler = cProfile.Profile(time.process_time)

    def _start(signum: int, frame: object) -> None:
        global _profiler
        _profiler = cProfile.Profile(time.process_time)  # each profiled run on its own
        _profiler.enable()

    def _stop(signum: int, frame: object) -> None:
        _profiler.disable()
        path = os.path.join(_DIR, f"{_SERVICE}.prof")
        _profiler.dump_stats(path + ".tmp")
        os.replace(path + ".tmp", path)  # the orchestrator waits for the whole file

    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _stop)

"""A folder that shares the adaptive-MCS probes between processes.

:meth:`phy.DigitalLink.select_mcs` measures what a fading channel gives
each codeword (:class:`~phy.mcs.FadingProfile`) once per SNR. The
measurement is deterministic (fixed seed), and a link process caches it in
memory; a sweep's worker processes would each measure the same SNRs again.
When the environment variable :data:`PROBE_STORE_ENV` names a folder, the
probes are shared through it: the first process to need a probe takes the
probe's file lock, measures it and writes it (atomically); the others wait
for the lock and read it. The files hold the exact float64 values, so a
sweep gives the same bytes with or without the store.

The sweep runner (:func:`experiments.runner.run_sweep`) points its workers
at ``<run dir>/.probes`` and deletes it when the sweep completes.

Example::

    >>> import os, tempfile
    >>> from phy.probe_store import PROBE_STORE_ENV, stored
    >>> os.environ[PROBE_STORE_ENV] = tempfile.mkdtemp()
    >>> stored(("example", 1.0), lambda: {"qpsk": 3.25})
    {'qpsk': 3.25}
    >>> stored(("example", 1.0), lambda: {"qpsk": -1.0})    # read back, not measured again
    {'qpsk': 3.25}
    >>> del os.environ[PROBE_STORE_ENV]
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

#: environment variable naming the shared probe folder (unset: no sharing)
PROBE_STORE_ENV = "DISTDIFF_PROBE_STORE"


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version  # pylint: disable=import-outside-toplevel

    out = []
    for name in ("distdiff", "sionna-no-rt", "torch"):
        try:
            out.append(f"{name}={version(name)}")
        except PackageNotFoundError:
            out.append(f"{name}=?")
    return ",".join(out)


def _encode(value) -> dict[str, np.ndarray]:
    from .mcs import FadingProfile  # pylint: disable=import-outside-toplevel

    if isinstance(value, FadingProfile):
        return {"kind": np.array("profile"), "snr_db": np.array(value.snr_db),
                **{f"mi:{m}": np.asarray(a) for m, a in value.mi.items()}}
    if isinstance(value, dict) and all(isinstance(v, float) for v in value.values()):
        return {"kind": np.array("effective"), **{f"snr:{m}": np.array(v) for m, v in value.items()}}
    raise TypeError(f"the probe store holds FadingProfile or dict[str, float] probes, got {type(value).__name__}")


def _decode(data) -> Any:
    from .mcs import FadingProfile  # pylint: disable=import-outside-toplevel

    if str(data["kind"]) == "profile":
        return FadingProfile(float(data["snr_db"]),
                             {k[3:]: np.array(data[k]) for k in data.files if k.startswith("mi:")})
    return {k[4:]: float(data[k]) for k in data.files if k.startswith("snr:")}


def stored(identity: tuple, measure: Callable[[], Any]) -> Any:
    """``measure()``, shared through the folder named by :data:`PROBE_STORE_ENV` (if set) under ``identity``.

    :param identity: what the probe depends on (its ``repr`` is hashed with the package versions).
    :param measure: computes the probe (a :class:`~phy.mcs.FadingProfile` or a ``dict[str, float]``).
    :output value: the probe, bit-identical whether measured here or read back.
    """
    folder = os.environ.get(PROBE_STORE_ENV)
    if not folder:
        return measure()
    import fcntl  # pylint: disable=import-outside-toplevel

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(f"{identity!r}|{_versions()}".encode()).hexdigest()[:32]
    path = root / f"{digest}.npz"
    with open(root / f"{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)          # one process measures, the others wait for its file
        try:
            if path.is_file():
                try:
                    with np.load(path, allow_pickle=False) as data:
                        return _decode(data)
                except (OSError, ValueError, KeyError):
                    path.unlink(missing_ok=True)  # torn or foreign file: measure again
            value = measure()
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(tmp, **_encode(value))
            os.replace(tmp, path)
            return value
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


__all__ = ["PROBE_STORE_ENV", "stored"]

"""Durable, tidy results: ``results.csv`` appended point by point, and a run directory layout.

``results.csv`` has one row per point x user x seed; every parameter and metric is
a column, with the unit in the column name (``snr_db``, ``airtime_s``,
``psnr_db`` ...). Each finished point's rows are appended in one write, then
flushed and fsync'ed, so a sweep killed at any moment (Ctrl-C, kill -9, power
loss after the fsync) keeps every point it finished. Each row carries the
point's ``point_key`` and ``point_rows`` (how many rows the point has): on
resume, a point counts as done only if all its rows are there, and a torn last
record is discarded. The file is repaired by parsing it as CSV (a prompt with a
newline inside quotes is one field), never by cutting lines.

A point whose rows bring a column the file does not have yet (e.g. ``mcs_index``
for an adaptive link after fixed-MCS points) rewrites the file atomically with
the wider header (write a temporary file, fsync, rename).

Run directory (``results/<experiment>/<run-id>/``)::

    results.csv       tidy rows (sorted by point once the sweep is complete)
    config.yaml       the resolved experiment config
    environment.json  versions, device, threads (per worker and per point), seeds, host
    timings.csv       wall time and worker of each point (not part of the numbers)
    failures.csv      points that failed, with the error (rerun to retry them)
    images/           per point: <point_key>/<group>_u<user>.png and ..._ref.png
    plots/<metric>__<x>.png and .pdf, image_grid.png, report.md

Example
-------
>>> import tempfile, pathlib
>>> store = ResultsStore(pathlib.Path(tempfile.mkdtemp()) / "results.csv")
>>> store.append_point("k1", [{"snr_db": 0.0, "psnr_db": 20.5}])
>>> sorted(store.completed_keys())
['k1']
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np

#: bookkeeping columns the runner adds in front of every row
KEY_COLUMNS = ("point_index", "point_key", "point_rows", "seed")


def _fsync_write(path: Path, text: str, mode: str = "a") -> None:
    with open(path, mode, newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _read_text(path: Path) -> str:
    with open(path, newline="") as f:
        return f.read()


def _records(text: str) -> tuple[list[list[str]], int]:
    r"""The complete CSV records of ``text`` and the length of the prefix they span.

    A record is complete when it ends with a newline outside quotes; a torn last
    record (a sweep killed mid-write, possibly inside a quoted field) is left out.

    >>> _records('a,b\n1,"x\ny"\n2,"z')
    ([['a', 'b'], ['1', 'x\ny']], 12)
    """
    pos = 0
    ends: list[int] = []

    def lines():
        nonlocal pos
        for line in io.StringIO(text, newline=""):
            pos += len(line)
            yield line

    reader = csv.reader(lines(), strict=True)
    records = []
    try:
        for rec in reader:
            records.append(rec)
            ends.append(pos)
    except csv.Error:
        pass                                        # end of data inside a quoted field: torn
    while records and text[ends[-1] - 1] not in "\r\n":
        records.pop()                               # the last record has no line end: torn
        ends.pop()
    return records, (ends[-1] if ends else 0)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    _fsync_write(tmp, text, mode="w")
    os.replace(tmp, path)
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (float, np.floating)):
        return repr(float(value))          # shortest exact round trip
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _csv_text(header: list[str], rows: list[dict], with_header: bool) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if with_header:
        w.writerow(header)
    for r in rows:
        w.writerow([_cell(r.get(c)) for c in header])
    return buf.getvalue()


class ResultsStore:
    """Append-only tidy CSV with per-point completeness (see the module docstring).

    Parameters
    ----------
    path : pathlib.Path
        The CSV file (created on the first append).
    """

    def __init__(self, path: Path | str, repair: bool = True):
        self.path = Path(path)
        self.header: list[str] = []
        if self.path.exists():
            if repair:
                self._repair()
            else:
                self.header = self._read_raw()[0]

    # ----------------------------------------------------------------- reading
    def _read_raw(self) -> tuple[list[str], list[dict]]:
        text = _read_text(self.path) if self.path.exists() else ""
        records, _ = _records(text)
        if not records:
            return [], []
        header = records[0]
        rows = [dict(zip(header, r)) for r in records[1:] if len(r) == len(header)]
        return header, rows

    def _repair(self) -> None:
        """Drop a torn last record and the rows of incomplete points (rewrites only if needed)."""
        text = _read_text(self.path)
        header, rows = self._read_raw()
        complete = self._complete(rows)
        kept = [r for r in rows if r.get("point_key") in complete]
        torn = _records(text)[1] != len(text)
        if torn or len(kept) != len(rows):
            _atomic_write(self.path, _csv_text(header, kept, with_header=True) if header else "")
        self.header = header

    @staticmethod
    def _complete(rows: list[dict]) -> set[str]:
        counts = Counter(r.get("point_key") for r in rows)
        expected = {r.get("point_key"): r.get("point_rows") for r in rows}
        return {k for k, n in counts.items() if k and str(n) == str(expected[k])}

    def completed_keys(self) -> set[str]:
        """Keys of the points whose rows are all in the file."""
        return self._complete(self._read_raw()[1])

    def read(self):
        """The results as a pandas DataFrame (numbers parsed)."""
        return read_results(self.path)

    # ----------------------------------------------------------------- writing
    def append_point(self, point_key: str, rows: list[dict]) -> None:
        """Append all rows of one finished point in one durable write.

        ``point_key`` and ``point_rows`` are added to each row (a point with no
        rows is stored as one row with only the bookkeeping columns).
        """
        rows = [dict(r) for r in rows] or [{}]
        for r in rows:
            r["point_key"] = point_key
            r["point_rows"] = len(rows)
        header = self.header or [c for c in KEY_COLUMNS if any(c in r for r in rows)]
        for r in rows:
            header = merge_columns(header, list(r))
        if not self.header:
            self.header = header
            _atomic_write(self.path, _csv_text(self.header, rows, with_header=True))
        elif header != self.header:                     # new columns: rewrite the file under the merged header
            _, old = self._read_raw()
            self.header = header
            _atomic_write(self.path, _csv_text(self.header, old + rows, with_header=True))
        else:
            _fsync_write(self.path, _csv_text(self.header, rows, with_header=False))

    def finalize(self, order: dict[str, int], keep_only_known: bool = False) -> None:
        """Rewrite the file sorted by point order (then by the row order within a point).

        ``order``: point_key -> index. Rows of keys not in ``order`` are kept after
        the known ones (dropped only when ``keep_only_known`` is asked for). Once every
        point is done, an interrupted-and-resumed sweep gives the same file as an
        uninterrupted one.
        """
        header, rows = self._read_raw()
        if not header:
            return
        rows = [(i, r) for i, r in enumerate(rows) if not keep_only_known or r.get("point_key") in order]
        rows.sort(key=lambda ir: (order.get(ir[1].get("point_key"), 1 << 60), ir[0]))
        _atomic_write(self.path, _csv_text(header, [r for _, r in rows], with_header=True))


def merge_columns(header: list[str], row_keys: list[str]) -> list[str]:
    """``header`` with the row's new columns put where the row has them, so that the header does not depend
    on the order rows arrive in (which point finished first, on which worker).

    A new column goes right after the nearest column before it in the row that the header has, then past
    the header's columns that the row lacks and that sort before it (columns no row holds together are
    ordered by name).

    >>> merge_columns(["a", "b"], ["a", "y", "b"])
    ['a', 'y', 'b']
    >>> merge_columns(merge_columns(["a", "b"], ["a", "x", "b"]), ["a", "y", "b"])
    ['a', 'x', 'y', 'b']
    >>> merge_columns(merge_columns(["a", "b"], ["a", "y", "b"]), ["a", "x", "b"])
    ['a', 'x', 'y', 'b']
    """
    header = list(header)
    present = set(row_keys)
    for i, col in enumerate(row_keys):
        if col in header:
            continue
        pos = next((header.index(p) + 1 for p in reversed(row_keys[:i]) if p in header), 0)
        while pos < len(header) and header[pos] not in present and header[pos] < col:
            pos += 1
        header.insert(pos, col)
    return header


def append_csv_row(path: Path, row: dict) -> None:
    """Append one row to a small side CSV (timings, failures), writing a header when new."""
    path = Path(path)
    new = not path.exists() or path.stat().st_size == 0
    header = list(row)
    if not new:
        with open(path, newline="") as f:
            header = next(csv.reader(f), header)
    _fsync_write(path, _csv_text(header, [row], with_header=new))


def read_results(path: Path | str):
    """``results.csv`` as a pandas DataFrame ('true'/'false' as booleans, empty cells as NaN)."""
    import pandas as pd

    path = Path(path)
    try:
        text = _read_text(path)
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text CSV file (not UTF-8)") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read it: {exc.strerror}") from None
    records, end = _records(text)
    text = text[:end]                              # a torn last record (a sweep killed mid-write)
    bad = next((i for i, r in enumerate(records[1:], start=2) if len(r) != len(records[0])), None)
    if bad is not None:
        raise ValueError(f"{path}: not a readable results CSV (record {bad} has {len(records[bad - 1])} "
                         f"fields, the header has {len(records[0])})")
    try:
        return pd.read_csv(io.StringIO(text), true_values=["true"], false_values=["false"], keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        problem = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(f"{path}: not a readable results CSV ({problem})") from None


def save_png(path: Path, image: np.ndarray) -> None:
    """Save a uint8 HxWx3 (or HxW) image as PNG, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image as mpimg

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    mpimg.imsave(tmp, np.ascontiguousarray(image))
    os.replace(tmp, path)


def environment_info(device: str = "cpu", torch_threads: int | None = None, seeds=None,
                     executor: str = "", point_threads: int | None = None) -> dict:
    """Versions of the stack, device, threads, host and seeds (for ``environment.json``).

    ``torch_threads``: the configured threads per worker; ``point_threads``: the
    threads each point really computes with, when the point function pins them.
    """
    import importlib.metadata as md
    import platform
    import subprocess
    import sys

    info = {"python": sys.version.split()[0], "platform": platform.platform(), "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "device": device, "torch_threads_per_worker": torch_threads,
            "torch_threads_per_point": point_threads,
            "seeds": list(seeds) if seeds is not None else None, "executor": executor}
    versions = {}
    for dist in ("distdiff", "torch", "sionna-no-rt", "diffusers", "transformers", "numpy", "scikit-image",
                 "pydantic", "pandas", "matplotlib"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = None
    info["versions"] = versions
    try:
        import torch

        info["cuda_available"] = bool(torch.cuda.is_available())
        if device.startswith("cuda") and torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001
        pass
    try:
        root = Path(__file__).resolve().parent.parent
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5)
        info["git_commit"] = commit.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    return info


__all__ = ["ResultsStore", "KEY_COLUMNS", "read_results", "append_csv_row", "save_png", "environment_info"]

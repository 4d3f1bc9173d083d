"""The version guard around phy's use of Sionna internals."""

from __future__ import annotations

import importlib
import pathlib
import re

import pytest
import sionna

from phy import _sionna_compat as compat

PHY = pathlib.Path(compat.__file__).parent


def test_installed_sionna_is_supported():
    compat.check_sionna_version()  # the suite runs on a supported version


@pytest.mark.parametrize("version", ["3.0.0", "2.1.9", "2.3.0", "not-a-version"])
def test_unsupported_sionna_fails_loudly_at_import(monkeypatch, version):
    monkeypatch.setattr(sionna, "__version__", version)
    low, high = compat.SUPPORTED_SIONNA
    with pytest.raises(ImportError) as exc:
        importlib.reload(compat)
    msg = str(exc.value)
    assert f"installed: Sionna {version}" in msg and f">={low},<{high}" in msg and "\n" not in msg
    monkeypatch.undo()
    importlib.reload(compat)  # the real version imports again


def test_no_other_phy_module_reads_sionna_private_attributes():
    pattern = re.compile(r"(?<!self)\._[a-z]\w*")
    offenders = []
    for path in sorted(PHY.glob("*.py")):
        if path.name == "_sionna_compat.py":
            continue
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            code = re.sub(r"([\"']).*?\1", "''", line.split("#")[0])  # strings are not attribute reads
            hits = [h for h in pattern.findall(code) if not re.search(r"from \._|import _", code)]
            named = [n for n in compat.PRIVATE_NAMES if re.search(rf"\b{n}\b", code)]
            if hits or named:
                offenders.append(f"{path.name}:{lineno}: {line.strip()}")
    assert offenders == []


def test_ldpc_internals_view_allows_only_known_names():
    from sionna.phy.fec.ldpc import LDPC5GEncoder

    from phy.ldpc import EarlyStopLDPC5GDecoder

    dec = EarlyStopLDPC5GDecoder(LDPC5GEncoder(k=40, n=80))
    view = compat.LdpcBpInternals(dec)
    assert view.cn_mask.shape[0] == dec.num_cns
    with pytest.raises(AttributeError, match="allowed"):
        view.something_else  # pylint: disable=pointless-statement

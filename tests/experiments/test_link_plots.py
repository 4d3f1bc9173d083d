"""`distdiff plot LINK.csv`: BER/BLER figure of a link sweep, theory where it exists."""

import numpy as np
import pandas as pd
import pytest

from experiments.cli import main
from experiments.link_plots import is_link_csv, plot_link_csv, theory_ber
from phy import LinkConfig
from phy.sweep import sweep_links


def test_plot_command_draws_a_link_csv(tmp_path, capsys):
    rows = sweep_links([(LinkConfig(code="none"), [0.0, 4.0, 8.0], None),
                        (LinkConfig(code="none", channel="rayleigh"), [0.0, 8.0], None)], 4000, progress=False)
    csv = tmp_path / "link.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    assert is_link_csv(csv)
    assert main(["plot", str(csv), "--x", "ebno_db"]) == 0
    png = tmp_path / "link.png"
    assert capsys.readouterr().out.strip() == str(png)
    assert png.stat().st_size > 10_000 and png.with_suffix(".pdf").is_file()


def test_theory_curves_only_where_a_closed_form_exists():
    ebno = np.array([0.0, 6.0])
    awgn = theory_ber(LinkConfig(code="none").model_dump(), ebno)
    assert awgn is not None and awgn[0][0] == pytest.approx(0.0786, abs=1e-4)     # Q(sqrt(2)) for BPSK/QPSK
    assert theory_ber(LinkConfig(code="none", channel="rayleigh").model_dump(), ebno) is not None
    assert theory_ber(LinkConfig(code="ldpc").model_dump(), ebno) is None                 # coded: no closed form
    assert theory_ber(LinkConfig(code="none", channel="rayleigh", csi="ls").model_dump(), ebno) is None


def test_a_csv_that_is_not_a_link_sweep_is_refused(tmp_path):
    csv = tmp_path / "other.csv"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a link sweep CSV"):
        plot_link_csv(csv)

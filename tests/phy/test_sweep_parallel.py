"""Link sweeps in worker processes give the rows of the serial sweep; slowest points first."""

import pytest

from phy import LinkConfig
from phy.sweep import point_cost, sweep_link, sweep_links


def test_two_workers_give_the_serial_rows():
    sweeps = [(LinkConfig(code="none", modulation="16qam"), [0.0, 4.0, 8.0], None),
              (LinkConfig(code="ldpc", channel="rayleigh", block_length=256), [2.0, 10.0], None),
              (LinkConfig(channel="bsc", code="none"), None, [0.01, 0.05])]
    kwargs = dict(num_bits=6000, seed=3, progress=False, target_block_errors=20, max_bits=20000)
    serial = sweep_links(sweeps, workers=1, **kwargs)
    parallel = sweep_links(sweeps, workers=2, **kwargs)
    assert repr(parallel) == repr(serial)          # (repr: the BSC rows hold NaN SNRs)
    # each sweep's points keep the seeds sweep_link gives it alone
    alone = sweep_link(sweeps[1][0], sweeps[1][1], **kwargs)
    assert repr(serial[3:5]) == repr(alone)


def test_bad_workers_is_one_clear_error():
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        sweep_link(LinkConfig(code="none"), [0.0], 100, workers=0, progress=False)


def test_point_cost_orders_slow_points_first():
    tdl, awgn = LinkConfig(channel="tdl-c"), LinkConfig(code="none")
    assert point_cost(0.0, tdl, None) > point_cost(0.0, awgn, None)
    assert point_cost(20.0, awgn, 100) > point_cost(0.0, awgn, 100)       # a block-error target stops low SNR early
    assert point_cost(20.0, awgn, None) == point_cost(0.0, awgn, None)    # a fixed budget costs the same

"""LinkConfig's physical bounds and per-code defaults (issue 10's validation gaps)."""

import pytest

from phy.config import (
    MAX_DELAY_SPREAD_S,
    MAX_SPEED_MPS,
    POLAR_DEFAULT_BLOCK_LENGTH,
    LinkConfig,
    LinkConfigError,
)


@pytest.mark.parametrize("kwargs, field", [
    (dict(speed_mps=1e9), "speed_mps"),
    (dict(speed_mps=MAX_SPEED_MPS * 1.001), "speed_mps"),
    (dict(delay_spread_s=1.0), "delay_spread_s"),
    (dict(delay_spread_s=MAX_DELAY_SPREAD_S * 1.001), "delay_spread_s"),
])
def test_unphysical_speed_and_delay_spread_are_one_line_errors(kwargs, field):
    with pytest.raises(LinkConfigError, match=rf"^LinkConfig\.{field}: .*less than or equal") as err:
        LinkConfig(channel="tdl-a", **kwargs)
    assert "\n" not in str(err.value)


def test_the_bounds_themselves_are_accepted():
    cfg = LinkConfig(channel="tdl-c", speed_mps=MAX_SPEED_MPS, delay_spread_s=MAX_DELAY_SPREAD_S)
    assert (cfg.speed_mps, cfg.delay_spread_s) == (500.0, 10e-6)


def test_polar_gets_its_own_default_block_length():
    cfg = LinkConfig(code="polar")
    assert cfg.block_length == POLAR_DEFAULT_BLOCK_LENGTH == 512
    assert LinkConfig(code="polar", block_length=None).block_length == 512
    assert cfg.codeword_length <= 1088
    assert LinkConfig().block_length == LinkConfig(code="none").block_length == 1024
    # an explicit block length is still checked, not replaced
    with pytest.raises(LinkConfigError, match="block_length"):
        LinkConfig(code="polar", block_length=1024)

"""The embedded model's training checkpoints load with torch.load(weights_only=True) (issue 10)."""

import pickle

import pytest
import torch

from pipeline.embedded import training


def _stage(path, seed=0):
    torch.manual_seed(seed)
    module = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(module.parameters(), lr=1e-2)
    return training._Stage(path, {"net": module}, opt, torch.Generator().manual_seed(seed), extra={"note": [1, 2.5]})


def test_a_stage_checkpoint_resumes_exactly_with_weights_only(tmp_path, capsys):
    path = tmp_path / "stage.pt"
    a = _stage(path)
    loss = a.modules["net"](torch.ones(4, 3)).pow(2).sum()
    loss.backward()
    a.optimizer.step()
    torch.randn(5, generator=a.generator)
    a.step, a.elapsed_s = 7, 1.5
    a.save()
    b = _stage(path, seed=1)  # different init: everything must come from the checkpoint
    assert "resumed stage.pt at step 7" in capsys.readouterr().out
    assert (b.step, b.elapsed_s, b.extra) == (7, 1.5, {"note": [1, 2.5]})
    for k, v in a.modules["net"].state_dict().items():
        assert torch.equal(v, b.modules["net"].state_dict()[k])
    assert torch.equal(a.generator.get_state(), b.generator.get_state())
    assert torch.equal(a.optimizer.state_dict()["state"][0]["exp_avg"], b.optimizer.state_dict()["state"][0]["exp_avg"])


class _Evil:
    def __reduce__(self):
        return (print, ("code ran while loading",))


def test_a_checkpoint_holding_arbitrary_objects_is_refused(tmp_path, capsys):
    path = tmp_path / "stage.pt"
    torch.save({"modules": {}, "payload": _Evil()}, path)
    with pytest.raises(pickle.UnpicklingError):
        _stage(path)
    assert "code ran" not in capsys.readouterr().out

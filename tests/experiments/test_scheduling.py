"""Points that share a sender state run together on one worker; forkserver workers preload imports."""

import os

import pytest

from experiments.config import load_config
from experiments.executors import ProcessExecutor
from experiments.grid import expand_grid, plan_chunks, sender_key


def _pid_of(item):
    return item, os.getpid()


def test_a_chunk_runs_on_one_worker_in_order():
    chunks = [[("a", i) for i in range(4)], [("b", i) for i in range(4)], [("c", 0)], [("d", 0)]]
    with ProcessExecutor(workers=2, start_method="fork") as ex:
        out = [(item, pid) for item, (_, pid), err in ex.imap_grouped(_pid_of, chunks)]
    assert len(out) == 10 and len({item for item, _ in out}) == 10
    for name in "ab":
        mine = [(item, pid) for item, pid in out if item[0] == name]
        assert len({pid for _, pid in mine}) == 1                       # one worker
        assert [item[1] for item, _ in mine] == [0, 1, 2, 3]           # in order
    assert len({pid for _, pid in out}) == 2                             # both workers used


def test_forkserver_workers_preload_and_run():
    with ProcessExecutor(workers=2, start_method="forkserver", preload=("json",)) as ex:
        out = sorted(r for _, (r, _pid), e in ex.imap_unordered(_pid_of, range(4)))
    assert out == [0, 1, 2, 3]


def test_plan_groups_the_main_job_by_seed_and_balances_two_workers():
    # the main job's grid shape with 3 seeds and 7 SNRs (3 sender states of 7 points each)
    cfg = load_config("default", overrides=["seeds=[0,1,2]", "grid.snr_db=[-5,0,5,10,15,20,25]"])
    points = expand_grid(cfg)
    assert len({sender_key(p) for p in points}) == len(cfg.seeds)
    chunks = plan_chunks(points, workers=2)
    assert sorted(p.index for c in chunks for p in c) == [p.index for p in points]    # every point once
    assert all(len({sender_key(p) for p in c}) == 1 for c in chunks)                   # one state per chunk
    # 3 groups of 7 on 2 workers: two whole groups, the third split in two
    assert sorted(len(c) for c in chunks) == [3, 4, 7, 7]
    # other link settings (SNR) do not split a group; another seed or k does
    a, b = points[0], next(p for p in points if p.seed == points[0].seed and p.params != points[0].params)
    assert sender_key(a) == sender_key(b)


def test_points_of_one_sender_state_share_the_unet_calls():
    """Second point of the same seed and state: its sender state, references and alone images are memoised."""
    from experiments.evaluate import evaluate_point, unet_calls
    from pipeline.cache import clear_memo

    # AWGN at 25 and 30 dB: every state arrives (a receiver that falls back would reuse its alone image)
    cfg = load_config("default", overrides=["model=tiny-random", "seeds=[5]", "grid.snr_db=[25,30]",
                                            "chain.link.channel=awgn", "chain.num_inference_steps=4",
                                            "chain.num_shared_steps=2", "chain.classify=false"])
    first, second = expand_grid(cfg)
    clear_memo()
    c0 = unet_calls()
    evaluate_point(first)
    c1 = unet_calls()
    evaluate_point(second)
    c2 = unet_calls()
    n_groups, n_rx = len(first.groups), len(first.groups[0]["receiver_prompts"])
    assert all(len(g["receiver_prompts"]) == n_rx for g in first.groups)
    # the main job batches the receivers of all its groups: per group shared 2 steps, then one batch each
    # of the references (2), the alone images (4) and the received latents (2): one UNet call per step
    assert cfg.chain["batch_receivers"] is True
    assert c1 - c0 == n_groups * 2 + 2 + 4 + 2
    assert c2 - c1 == 2                          # only the received images are new: one batch


def test_batched_points_resume_byte_identical(tmp_path):
    """With receivers batched (2 groups of 3 and 2: batches of 5), an interrupted and resumed sweep writes the same
    bytes (the resumed points run on a memo-free worker)."""
    from experiments.executors import SerialExecutor
    from experiments.evaluate import evaluate_point
    from experiments.runner import run_sweep
    from pipeline.cache import clear_memo

    cfg = load_config("default", overrides=["model=tiny-random", "seeds=[1]", "grid.snr_db=[0,10,20]",
                                            "chain.num_inference_steps=4", "chain.num_shared_steps=2",
                                            "chain.classify=false",
                                            "users=[{shared_prompt: a red apple on a wooden table, receiver_prompts:"
                                            " [a yellow lemon on a wooden table, an orange orange on a wooden table,"
                                            " a green apple on a wooden table]}, {shared_prompt: a black cat on a"
                                            " wooden table, receiver_prompts: [a white rabbit on a wooden table,"
                                            " a brown bird on a wooden table]}]"])
    assert cfg.chain["batch_receivers"] is True
    kw = dict(executor=SerialExecutor(), progress=False, chain_model=None, make_outputs=False)
    clear_memo()
    whole = run_sweep(cfg, evaluate_point, out_root=tmp_path / "whole", **kw)
    clear_memo()
    part = run_sweep(cfg, evaluate_point, out_root=tmp_path / "part", limit=2, **kw)
    assert part.num_done == 2 and not part.complete
    clear_memo()                                   # the resumed points find no memoised references or alone images
    rest = run_sweep(cfg, evaluate_point, out_root=tmp_path / "part", **kw)
    assert rest.complete and rest.num_skipped == 2
    assert (rest.run_dir / "results.csv").read_bytes() == (whole.run_dir / "results.csv").read_bytes()


def _has_quiet_filters(_):
    import logging

    return any(type(f).__name__ == "_DropRecords"
               for f in logging.getLogger("transformers.utils.import_utils").filters)


def test_workers_apply_the_command_lines_quiet_filters():
    """Sweep workers drop the same upstream noise as the command line (issue 10: nothing printed twice per worker)."""
    with ProcessExecutor(workers=1, start_method="forkserver", preload=("json",)) as ex:
        assert [r for _, r, e in ex.imap_unordered(_has_quiet_filters, [0])] == [True]


def test_workers_share_the_adaptive_mcs_probes_through_the_run_directory(tmp_path, monkeypatch):
    """Two workers measure each SNR's fading probe once between them (phy.probe_store); the store goes at the end."""
    from experiments import runner
    from phy import probe_store
    from phy.mcs import FadingProfile

    assert runner.PROBE_STORE_ENV == probe_store.PROBE_STORE_ENV
    log = tmp_path / "measured.txt"
    original = FadingProfile.measure.__func__

    def logged(cls, channel, snr_db, *args, **kwargs):        # inherited by the forked workers
        with open(log, "a") as f:
            f.write(f"{snr_db}\n")
        return original(cls, channel, snr_db, *args, **kwargs)

    monkeypatch.setattr(FadingProfile, "measure", classmethod(logged))
    monkeypatch.setattr("phy.link._PROBE_CACHE", {})           # nothing measured yet in this process
    cfg = load_config("default", overrides=["model=tiny-random", "seeds=[0,1]", "grid.snr_db=[0,20]",
                                            "chain.num_inference_steps=2", "chain.num_shared_steps=1",
                                            "chain.classify=false", "chain.compare_alone=false",
                                            "execution.save_images=false"])
    with ProcessExecutor(workers=2, start_method="fork") as ex:
        parallel = runner.run_sweep(cfg, out_root=tmp_path / "parallel", executor=ex, progress=False,
                                    make_outputs=False)
    assert parallel.complete and not (parallel.run_dir / runner.PROBE_FOLDER).exists()
    # 2 seeds x 2 SNRs on 2 workers: each SNR measured once between them (4 times without the store)
    assert sorted(log.read_text().split()) == ["0.0", "20.0"]
    monkeypatch.delenv(runner.PROBE_STORE_ENV, raising=False)
    serial = runner.run_sweep(cfg, out_root=tmp_path / "serial", executor=runner.make_executor("serial"),
                              progress=False, make_outputs=False)
    assert (parallel.run_dir / "results.csv").read_bytes() == (serial.run_dir / "results.csv").read_bytes()
    # a serial sweep runs in this process: the store is not left in its environment for later links
    assert runner.PROBE_STORE_ENV not in os.environ and not (serial.run_dir / runner.PROBE_FOLDER).exists()

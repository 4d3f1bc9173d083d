"""The ``distdiff`` entry point: options generated from the models, fail-fast errors, quiet output."""

from __future__ import annotations

import logging

import pytest

from experiments import cli_options
from experiments.cli import main, parse_args, quiet_upstream
from experiments.commands import generate
from latent_codec import CodecConfig
from phy import LinkConfig
from pipeline import ChainConfig
from tests.cli_probe import run_cli_in_fresh_process

GEN = ["generate", "--prompt", "a red apple on a wooden table", "--model", "tiny-random"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTDIFF_CACHE_DIR", str(tmp_path / "cache"))


def _error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip().startswith("distdiff 0.")


@pytest.mark.parametrize("model, fields", [(ChainConfig, generate.CHAIN_FIELDS + generate.CHAIN_LINK_FIELDS),
                                           (CodecConfig, generate.CODEC_FIELDS), (LinkConfig, generate.LINK_FIELDS)])
def test_options_follow_the_models(model, fields):
    """Choices, defaults and bounds are the model's; the cached copy equals a fresh extraction."""
    ref = f"{model.__module__}:{model.__name__}"
    fresh = cli_options.specs_from_model(model, fields)
    assert cli_options.model_specs(ref, fields) == fresh  # builds the cache
    assert cli_options.model_specs(ref, fields) == fresh  # reads it back
    for spec in fresh:
        info = model.model_fields[spec.name]
        assert spec.default == (list(info.default) if isinstance(info.default, tuple) else info.default)
    by_name = {s.name: s for s in fresh}
    if model is LinkConfig:
        assert by_name["channel"].choices == tuple(model.model_fields["channel"].annotation.__args__)
        assert by_name["mcs"].words == ("auto",) and by_name["mcs"].parse("auto") == "auto"


def test_stale_cache_is_rebuilt(monkeypatch):
    ref, fields = "phy.config:LinkConfig", ["code_rate"]
    monkeypatch.setattr(cli_options, "_source_hash", lambda: "old")
    path = cli_options.cache_dir() / "cli-options-old.json"
    cli_options.model_specs(ref, fields)
    path.write_text(path.read_text().replace('"default": 0.5', '"default": 0.75'))
    assert cli_options.model_specs(ref, fields)[0].default == 0.75  # the cache is used as is ...
    monkeypatch.setattr(cli_options, "_source_hash", lambda: "new")
    assert cli_options.model_specs(ref, fields)[0].default == 0.5  # ... until the source changes
    for i in range(cli_options._CACHE_KEEP + 2):  # old source versions are dropped, a few kept
        monkeypatch.setattr(cli_options, "_source_hash", lambda i=i: f"v{i}")
        cli_options.model_specs(ref, fields)
    assert len(list(cli_options.cache_dir().glob("cli-options-*.json"))) == cli_options._CACHE_KEEP


def test_help_prints_each_default_once(capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in text and "(default: qpsk)" in text and "(default: 0.5)" in text
    assert "(default: qpsk) (default" not in text
    assert "--mcs {auto,N}" in text and "--scheduler {euler_ancestral," in text


@pytest.mark.parametrize("argv, words", [
    (["--steps", "-1"], "argument --steps: must be >= 1, got -1"),
    (["--code-rate", "2"], "argument --code-rate: must be <= 1, got 2"),
    (["--modulation", "8psk"], "argument --modulation: invalid choice '8psk'"),
    (["--seed", "12345678901234567890"], "argument --seed: must be in 0..2**63-1"),
    (["--mcs", "high"], "argument --mcs: must be an integer or 'auto'"),
    (["--speed-mps", "inf"], "argument --speed-mps: must be a finite number, got 'inf'"),
    (["--analog", "--lossless"], "argument --lossless: contradicts transmission 'analog'"),
])
def test_bad_options_are_one_line_argparse_errors(argv, words, capsys):
    assert words in _error(GEN + argv, capsys)


@pytest.mark.parametrize("argv, words", [
    (["--bit-error-rate", "0.01"], "--bit-error-rate only applies to --channel bsc"),
    (["--channel", "awgn", "--bit-error-rate", "0.01"], "--bit-error-rate only applies to --channel bsc"),
    (["--shared-prompt", ""], "--shared-prompt must not be empty (leave it out to use --prompt)"),
    (["--prompt", "  "], "--prompt must not be empty"),
    (["--codec", "float16", "--bits", "4"], "--bits does not apply to --codec float16"),
])
def test_cross_option_errors_are_one_line(argv, words, capsys):
    assert main(GEN + argv) == 2
    assert capsys.readouterr().err.strip() == f"distdiff: error: {words}"


def test_out_that_is_a_file_is_refused_before_the_work(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main(GEN + ["--out", str(tmp_path / "f")]) == 2
    assert capsys.readouterr().err.strip() == f"distdiff: error: --out {tmp_path / 'f'}: exists and is not a directory"


def test_out_where_no_folder_can_be_made_is_refused_even_for_root(capsys):
    """/proc passes os.access for root, but no folder can be created in it: one line, before any work."""
    assert main(GEN + ["--out", "/proc/distdiff-out"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("distdiff: error: --out /proc/distdiff-out: ") and "\n" not in err


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="the machine has CUDA")
def test_device_cuda_without_cuda_is_one_line(tmp_path, capsys):
    assert main(GEN + ["--lossless", "--device", "cuda", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == ("distdiff: error: --device cuda: CUDA is not available on this "
                                               "machine (use --device cpu)")


def test_negative_values_and_big_values_parse():
    args = parse_args(["generate", "--prompt", "x", "--snr-db", "-5", "--seed", str(2**63 - 1)])
    assert args.snr_db == -5.0 and args.seed == 2**63 - 1
    args = parse_args(["generate", "--prompt", "x", "--snr-db", "-1e-1"])
    assert args.snr_db == -0.1
    doc = generate.chain_config_from_args(parse_args(
        ["generate", "--prompt", "x", "--channel", "rayleigh", "--snr-db", "-5", "--mcs", "auto"]))
    assert doc["snr_db"] == -5.0 and doc["link"] == {"channel": "rayleigh", "mcs": "auto"}
    assert ChainConfig.model_validate(doc).snr_db == -5.0


def test_errors_come_before_torch_is_imported(tmp_path):
    """With the option cache built, argument and cross-option errors never import torch, Sionna or diffusers."""
    generate._specs()  # builds the cache in this process (the models are imported here anyway)
    run = run_cli_in_fresh_process([["generate", "--prompt", "x", "--steps", "-1"],
                                    ["generate", "--prompt", "x", "--bit-error-rate", "0.1"]])
    assert run.stdout.strip() == "[]", run.stdout + run.stderr
    assert "argument --steps: must be >= 1" in run.stderr and "--bit-error-rate only applies" in run.stderr


def test_broken_pipe_is_quiet_and_malloc_tuned_once(monkeypatch, capsys):
    import phy

    calls = []
    monkeypatch.setattr(phy, "tune_malloc", lambda: calls.append(1))

    def reader_gone(args):
        raise BrokenPipeError

    monkeypatch.setattr(generate, "run", reader_gone)
    monkeypatch.setattr(generate, "check", lambda args: None)
    assert main(GEN + ["--lossless"]) == 0
    assert capsys.readouterr().err == "" and calls == [1]


def test_quiet_upstream_drops_exactly_the_named_records(caplog):
    quiet_upstream()
    quiet_upstream()  # idempotent
    log = logging.getLogger("diffusers.pipelines.pipeline_utils")
    with caplog.at_level(logging.WARNING):
        log.warning("Cannot initialize model with low cpu memory usage because `accelerate` was not found ...")
        log.warning("something else that matters")
    assert [r.getMessage() for r in caplog.records] == ["something else that matters"]
    assert len(log.filters) == 1


def test_any_text_for_any_generated_option_parses_or_is_a_clean_error():
    """Property: every generated option either returns a value the model's field accepts or raises
    argparse's ArgumentTypeError (a one-line usage error), never anything else."""
    import argparse

    from hypothesis import given, settings, strategies as st

    specs = [s for group in generate._specs() for s in group if s.kind != "bool"]
    models = {s.name: m for m, group in zip((ChainConfig, ChainConfig, CodecConfig, LinkConfig), generate._specs())
              for s in group}
    numbers = st.one_of(st.integers(-10**25, 10**25).map(str), st.floats(allow_nan=True).map(repr),
                        st.sampled_from(["auto", "minmax", "-0", "1e999", "", " ", "0x10", "1_000", "nan", "-inf"]))

    @settings(max_examples=300, deadline=None)
    @given(spec=st.sampled_from(specs), text=st.one_of(numbers, st.text(max_size=12)))
    def check(spec, text):
        try:
            value = spec.parse(text)
        except argparse.ArgumentTypeError as exc:
            assert "\n" not in str(exc)
            return
        from pydantic import TypeAdapter

        info = models[spec.name].model_fields[spec.name]
        TypeAdapter(info.annotation).validate_python(value)  # the field's type takes it
        for key, bound in spec.bounds.items():
            assert {"ge": value >= bound, "gt": value > bound, "le": value <= bound, "lt": value < bound}[key]

    check()

import json
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from modeldx.cli import app
from modeldx.demo import run_demo
from tests.conftest import MNIST_DIR

runner = CliRunner()


def test_info_and_queries_list(digits_store):
    result = runner.invoke(app, ["info", str(digits_store.path)])
    assert result.exit_code == 0, result.output
    assert "complete" in result.output and "act2" in result.output
    result = runner.invoke(app, ["info", str(digits_store.path), "--json"])
    assert json.loads(result.output)["items"] == 1797
    result = runner.invoke(app, ["queries"])
    assert "top-k-neurons" in result.output and "linear-cka" in result.output


def test_query_writes_csv_and_json(digits_store, tmp_path):
    out = tmp_path / "top.csv"
    result = runner.invoke(app, ["query", "top-k-neurons", str(digits_store.path), "-p", "k=3",
                                 "-p", 'layers=["act2"]', "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert set(frame.layer) == {"act2"} and frame["rank"].max() == 3
    out = tmp_path / "nn.json"
    result = runner.invoke(app, ["query", "nearest-neighbors", str(digits_store.path), "-p", "layer=act2",
                                 "-p", "item_id=7", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["query"] == "nearest-neighbors" and len(data["answer"]) == 10


def test_query_errors_are_one_clear_line(digits_store):
    result = runner.invoke(app, ["query", "top-k-neuron", str(digits_store.path)])
    assert result.exit_code == 2 and "Did you mean 'top-k-neurons'" in result.output
    result = runner.invoke(app, ["query", "top-k-neurons", str(digits_store.path), "-p", "kk=3"])
    assert result.exit_code == 2 and "no parameter 'kk'" in result.output
    result = runner.invoke(app, ["query", "top-k-neurons", str(digits_store.path), "-p", "k=0"])
    assert result.exit_code == 2 and "Got 0" in result.output
    result = runner.invoke(app, ["info", "/nonexistent/store"])
    assert result.exit_code == 2 and "no store at" in result.output


def test_capture_command(mnist_model, tmp_path):
    store = tmp_path / "cli-store"
    result = runner.invoke(app, ["capture", str(mnist_model.checkpoint), str(store), "--splits", "test",
                                 "--layers", "act3,act4", "--encoding", "uint8", "--quiet",
                                 "--data-root", str(MNIST_DIR)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["info", str(store), "--json"])
    info = json.loads(result.output)
    assert info["items"] == 10000 and info["encoding"] == "uint8"
    assert [layer["name"] for layer in info["layers"]] == ["act3", "act4"]


def test_demo_reuses_a_checkpoint_and_writes_the_headline_answer(mnist_model, tmp_path):
    out = tmp_path / "demo"
    out.mkdir()
    shutil.copy(mnist_model.checkpoint, out / "lenet5-mnist.pt")
    summary = run_demo(out, data_root=str(MNIST_DIR), progress=False, seeds=())
    assert summary["groups"] == 100 and summary["test_accuracy"] >= 0.985 and "report" not in summary
    frame = pd.read_csv(summary["csv"])
    # 20 groups per layer; min(10, neurons) rows each: act1 has 6 channels, the others >= 10
    assert len(frame) == 20 * (6 + 10 + 10 + 10 + 10)
    assert set(frame.layer) == {"act1", "act2", "act3", "act4", "fc3"}
    # the second run reuses model and store, and runs a small version of the paper's evaluation
    again = run_demo(out, data_root=str(MNIST_DIR), progress=False, methods=["uniform", "latent-svm"],
                     fractions=[0.01, 0.05], seeds=(0,))
    assert again["test_accuracy"] == summary["test_accuracy"]
    assert again["precision"].shape == (2, 2) and again["precision"].to_numpy().min() > 0.4
    assert list(again["calibration"].fraction) == [0.01, 0.05]
    page = again["report"].read_text()
    assert "uniform" in page and "latent-svm" in page and "reliability.png" in page


def test_train_command_writes_a_checkpoint(tmp_path):
    from modeldx.zoo import load_checkpoint

    out = tmp_path / "m.pt"
    result = runner.invoke(app, ["train", "--epochs", "1", "--out", str(out), "--quiet",
                                 "--data-root", str(MNIST_DIR)])
    assert result.exit_code == 0, result.output
    _, meta = load_checkpoint(out)
    assert meta["epochs"] == 1 and meta["test_accuracy"] > 0.95
    assert f"{meta['test_accuracy']:.2%}" in result.output


def test_train_command_takes_the_dead_relu_recipe(tmp_path):
    from modeldx.zoo import PlainCNN, load_checkpoint

    out = tmp_path / "plain.pt"
    result = runner.invoke(app, ["train", "--model", "plaincnn", "--lr", "0.01", "--batch-size", "64",
                                 "--epochs", "1", "--train-items", "640", "--out", str(out), "--quiet",
                                 "--data-root", str(MNIST_DIR)])
    assert result.exit_code == 0, result.output
    model, meta = load_checkpoint(out)
    assert isinstance(model, PlainCNN) and not model.batch_norm
    assert (meta["arch"], meta["lr"], meta["batch_size"], meta["train_items"]) == ("plaincnn", 0.01, 64, 640)
    assert len(meta["losses"]) == 10  # 640 items in batches of 64


def test_sample_and_evaluate_commands(digits_store, tmp_path):
    shutil.copytree(digits_store.path, tmp_path / "store")
    store = str(tmp_path / "store")
    result = runner.invoke(app, ["sample", store, "latent-gmm", "--fraction", "0.1", "-p", "j=0.3"])
    assert result.exit_code == 0, result.output
    assert "latent-gmm-0.1-s0: 180 items" in result.output
    result = runner.invoke(app, ["query", "top-k-neurons", store, "--sample", "latent-gmm-0.1-s0",
                                 "--format", "json"])
    assert json.loads(result.stdout)["source"]["method"] == "latent-gmm"  # progress goes to stderr
    out = tmp_path / "eval"
    result = runner.invoke(app, ["evaluate", store, "--methods", "uniform,eb-tree", "--fractions",
                                 "0.05,0.2", "--seeds", "2", "--out", str(out), "--quiet", "--k", "3"])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out / "results.csv")
    assert {"method", "fraction", "seed", "query", "layer", "label", "correct", "metric",
            "value"} <= set(frame.columns)
    assert (out / "index.html").is_file() and "precision@k" in result.output
    result = runner.invoke(app, ["sample", store, "kmeans"])
    assert result.exit_code == 2 and "'method' parameter must be one of" in result.output


def test_ldam_command_writes_the_grids(mnist_model, tmp_path):
    from PIL import Image

    out = tmp_path / "ldam"
    result = runner.invoke(app, ["ldam", str(mnist_model.checkpoint), "--neurons", "1,7", "--chains", "3",
                                 "--steps", "30", "--burn-in", "10", "--out", str(out), "--quiet",
                                 "--data-root", str(MNIST_DIR)])
    assert result.exit_code == 0, result.output
    average = Image.open(out / "fc3-1-7-average.png")
    assert average.size == (2 * 30 + 2, 3 * 30 + 2)  # columns: neurons; rows: chains; 2-pixel gaps
    result = runner.invoke(app, ["ldam", str(mnist_model.checkpoint), "--layer", "act3", "--neurons", "500",
                                 "--quiet", "--data-root", str(MNIST_DIR)])
    assert result.exit_code == 2 and "has 120 neurons" in result.output


def test_ldam_command_trains_the_discriminator_when_asked(mnist_model, tmp_path, monkeypatch):
    from modeldx.ldam import discriminator

    updates = []
    real_update = discriminator.OnlineDiscriminator.update
    monkeypatch.setattr(discriminator.OnlineDiscriminator, "update",
                        lambda self, fakes: updates.append(1) or real_update(self, fakes))
    out = tmp_path / "ldam"
    result = runner.invoke(app, ["ldam", str(mnist_model.checkpoint), "--neurons", "3", "--chains", "2",
                                 "--steps", "25", "--burn-in", "5", "--discriminator", "--disc-weight", "1",
                                 "--out", str(out), "--quiet", "--data-root", str(MNIST_DIR)])
    assert result.exit_code == 0, result.output
    assert (out / "fc3-3-average.png").is_file()
    assert len(updates) >= 1  # D(x) > 0.9 or at most 20 steps: at least one update in 25 steps


def test_serve_refuses_to_expose_a_session_without_a_token():
    result = runner.invoke(app, ["serve", "classifier", "--host", "0.0.0.0", "--data-root", str(MNIST_DIR)])
    assert result.exit_code == 2 and "pass a token" in result.output
    result = runner.invoke(app, ["serve", "kmeans", "--split", "test", "--k", "1",
                                 "--data-root", str(MNIST_DIR)])
    assert result.exit_code == 2 and "'k'" in result.output


def _damaged_copy(digits_store, tmp_path):
    path = tmp_path / "damaged"
    shutil.copytree(digits_store.path, path)
    (path / "arrays.zarr" / "acts" / "act2" / "c" / "3" / "0").unlink()
    chunk = path / "arrays.zarr" / "latent" / "c" / "6" / "0"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    return path


def test_info_says_damaged_and_check_lists_every_bad_chunk(digits_store, tmp_path):
    result = runner.invoke(app, ["check", str(digits_store.path), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "no damage" in result.output
    path = _damaged_copy(digits_store, tmp_path)
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 1 and "damaged" in result.output and "complete" not in result.output
    assert "acts/act2 chunk 3 (items 768-1023): is missing" in result.output
    result = runner.invoke(app, ["check", str(path), "--quiet"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("damaged:")]
    assert len(lines) == 2, result.output
    assert lines[0] == "damaged: latent chunk 6 (items 1536-1791): does not decode " + \
        lines[0].split("does not decode ", 1)[1]
    assert lines[1] == "damaged: acts/act2 chunk 3 (items 768-1023): is missing"


def test_info_reads_every_chunk_so_a_flipped_byte_is_damage(digits_store, tmp_path):
    path = tmp_path / "flipped"
    shutil.copytree(digits_store.path, path)
    chunk = path / "arrays.zarr" / "acts" / "act2" / "c" / "2" / "0"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 1 and "damaged" in result.output and "Traceback" not in result.output
    assert "acts/act2 chunk 2" in result.output
    quick = runner.invoke(app, ["info", str(path), "--quick"])  # files only: this damage is not seen
    assert quick.exit_code == 0, quick.output


def test_info_and_check_on_a_damaged_manifest_fail_in_one_line(digits_store, tmp_path):
    path = tmp_path / "damaged"
    shutil.copytree(digits_store.path, path)
    (path / "items.parquet").unlink()
    for command in ("info", "check"):
        result = runner.invoke(app, [command, str(path)])
        assert result.exit_code != 0 and "Traceback" not in result.output
        assert "items.parquet is missing" in result.output
        assert "complete" not in result.output


# --- every error a user can make is one line on stderr, never a traceback ------------------------------

def _leaf_commands(group, path=()):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a group such as `serve`
            yield from _leaf_commands(command, (*path, name))
        else:
            yield (*path, name), command


def _assert_one_line_error(result, needle: str = ""):
    assert result.exit_code not in (0, None), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert needle in lines[0], lines[0]


def _bad_arguments(command) -> list[list[str]]:
    """Arguments each command must refuse: an unknown option; nonexistent paths and data root."""
    cases = [["--no-such-option"]]
    positional = [p for p in command.params if p.param_type_name == "argument"]
    options = {o for p in command.params if p.param_type_name == "option" for o in p.opts}
    args = [f"/nonexistent/modeldx-{p.name}" for p in positional]
    if "--data-root" in options:
        args += ["--data-root", "/nonexistent/modeldx-data"]
    if args:
        cases.append(args)
    if positional:
        cases.append([])  # a missing argument
    return cases


def test_every_subcommand_refuses_bad_arguments_in_one_line(monkeypatch, tmp_path):
    from typer.main import get_command

    monkeypatch.chdir(tmp_path)  # commands with default output folders write nothing outside it
    commands = list(_leaf_commands(get_command(app)))
    assert {"query", "sample", "capture", "train", "evaluate", "demo", "ldam", "info"} <= {
        path[-1] for path, _ in commands}
    tried = 0
    for path, command in commands:
        for bad in _bad_arguments(command):
            result = runner.invoke(app, [*path, *bad])
            try:
                _assert_one_line_error(result)
            except AssertionError as exc:
                raise AssertionError(f"modeldx {' '.join([*path, *bad])}: {exc}") from exc
            tried += 1
    assert tried >= 2 * len(commands)


@pytest.mark.parametrize(("query", "params", "needle"), [
    ("activation-profile", ["-p", "layer=act2"], "-p neuron=..."),
    ("top-k-inputs", [], "-p layer=..."),
    ("linear-cka", ["-p", "layer_a=act2"], "-p layer_b=..."),
    ("linear-cka", ["-p", "layer_a=act2", "-p", "layer_b=act3", "-p", "other=/nope"], "/nope"),
])
def test_a_missing_or_bad_query_parameter_is_one_line(digits_store, query, params, needle):
    result = runner.invoke(app, ["query", query, str(digits_store.path), *params, "--quiet"])
    _assert_one_line_error(result, needle)


def test_linear_cka_takes_the_other_store_as_a_path(digits_store):
    result = runner.invoke(app, ["query", "linear-cka", str(digits_store.path), "-p", "layer_a=act2",
                                 "-p", "layer_b=act2", "-p", f"other={digits_store.path}", "--format",
                                 "csv", "--quiet"])
    assert result.exit_code == 0, result.output
    assert float(result.stdout.splitlines()[1].split(",")[2]) == pytest.approx(1.0)


def test_evaluate_to_an_unwritable_folder_fails_before_the_work(digits_store):
    result = runner.invoke(app, ["evaluate", str(digits_store.path), "--out", "/proc/nope", "--quiet"])
    _assert_one_line_error(result, "/proc/nope")


@pytest.mark.parametrize("port", ["-1", "99999"])
def test_serve_refuses_a_port_out_of_range_in_one_line(port):
    result = runner.invoke(app, ["serve", "classifier", "--port", port])
    _assert_one_line_error(result, "'--port'")
    assert "65535" in result.stderr or "greater than or equal to 1" in result.stderr


def test_query_output_errors(digits_store, tmp_path):
    store = str(digits_store.path)
    result = runner.invoke(app, ["query", "confusion-matrix", store, "--out", "/proc/nope/x.csv"])
    _assert_one_line_error(result, "/proc/nope/x.csv")
    result = runner.invoke(app, ["query", "confusion-matrix", store, "--format", "xml"])
    _assert_one_line_error(result, "'xml'")
    result = runner.invoke(app, ["query", "confusion-matrix", store, "--out", str(tmp_path / "x.xlsx")])
    _assert_one_line_error(result, ".xlsx")
    assert not (tmp_path / "x.xlsx").exists()
    result = runner.invoke(app, ["query", "dead-neurons", store, "-p", "tol=abc"])
    _assert_one_line_error(result, "'tol'")
    assert "a float" in result.stderr and "'abc'" in result.stderr
    result = runner.invoke(app, ["query", "top-k-neurons", store, "-p", "k=2.5"])
    _assert_one_line_error(result, "'k'")
    result = runner.invoke(app, ["query", "top-k-neurons", store, "--sample", "nope"])
    _assert_one_line_error(result, "'nope'")


def test_query_writes_parquet_with_its_provenance(digits_store, tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "top.parquet"
    result = runner.invoke(app, ["query", "top-k-neurons", str(digits_store.path), "-p", "k=2", "--out",
                                 str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert frame["rank"].max() == 2 and set(frame.layer) == set(digits_store.layers)
    meta = json.loads(pq.read_schema(out).metadata[b"modeldx"])
    assert meta["query"] == "top-k-neurons" and meta["params"]["k"] == 2
    # stdout formats need no --out; parquet does
    result = runner.invoke(app, ["query", "confusion-matrix", str(digits_store.path), "--format", "parquet"])
    _assert_one_line_error(result, "--out")


def test_query_shows_progress_on_stderr_unless_quiet(digits_store):
    args = ["query", "top-k-neurons", str(digits_store.path), "--format", "csv"]
    loud = runner.invoke(app, args)
    assert loud.exit_code == 0 and "query" in loud.stderr and "chunk" in loud.stderr
    assert loud.stdout.startswith("layer,")  # the answer alone on stdout
    quiet = runner.invoke(app, [*args, "--quiet"])
    assert quiet.exit_code == 0 and quiet.stderr == "" and quiet.stdout == loud.stdout


def test_sample_name_must_be_plain(digits_store, tmp_path):
    shutil.copytree(digits_store.path, tmp_path / "store")
    result = runner.invoke(app, ["sample", str(tmp_path / "store"), "uniform", "--name", "../evil"])
    _assert_one_line_error(result, "'../evil'")
    assert not list(tmp_path.rglob("evil*"))


def test_capture_on_a_missing_cuda_device_is_one_line(tmp_path, monkeypatch):
    import torch

    from modeldx.zoo import LeNet5, save_checkpoint

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    ckpt = save_checkpoint(LeNet5(), tmp_path / "m.pt", "lenet5", {})
    result = runner.invoke(app, ["capture", str(ckpt), str(tmp_path / "s"), "--splits", "test", "--device",
                                 "cuda", "--quiet", "--data-root", str(MNIST_DIR)])
    _assert_one_line_error(result, "cuda")


def test_a_bug_is_a_traceback_not_an_error_line(digits_store, monkeypatch):
    import modeldx.queries.confusion as confusion

    def broken(store, **kwargs):
        raise TypeError("a bug")

    monkeypatch.setattr(confusion, "_table", broken)
    result = runner.invoke(app, ["query", "confusion-matrix", str(digits_store.path)])
    assert isinstance(result.exception, TypeError) and "error:" not in result.output


def test_capture_command_passes_the_dask_options(tmp_path, monkeypatch, tiny_model):
    # the Dask capture itself is tested in tests/capture/test_distributed.py; here the wiring
    import sys

    import modeldx.zoo

    seen = {}

    def fake_capture(model, data, store, **kwargs):
        seen.update(kwargs, store=store)
        raise SystemExit(0)

    monkeypatch.setattr(modeldx.zoo, "load_checkpoint", lambda path: (tiny_model, {}))
    # sys.modules: the package re-exports the function under the subpackage's name
    monkeypatch.setattr(sys.modules["modeldx.capture"], "capture", fake_capture)
    result = runner.invoke(app, ["capture", "x.pt", "file:///shared/runs/s", "--splits", "test",
                                 "--engine", "dask", "--scheduler", "tcp://10.0.0.1:8786",
                                 "--chunk-order", "random", "--quiet", "--data-root", str(MNIST_DIR)])
    assert result.exit_code == 0, result.output
    assert seen["store"] == "file:///shared/runs/s" and seen["engine"] == "dask"
    assert seen["scheduler"] == "tcp://10.0.0.1:8786" and seen["workers"] is None
    assert seen["chunk_order"] == "random"

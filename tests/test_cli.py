import json
import shutil

import pandas as pd
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


def test_sample_and_evaluate_commands(digits_store, tmp_path):
    shutil.copytree(digits_store.path, tmp_path / "store")
    store = str(tmp_path / "store")
    result = runner.invoke(app, ["sample", store, "latent-gmm", "--fraction", "0.1", "-p", "j=0.3"])
    assert result.exit_code == 0, result.output
    assert "latent-gmm-0.1-s0: 180 items" in result.output
    result = runner.invoke(app, ["query", "top-k-neurons", store, "--sample", "latent-gmm-0.1-s0",
                                 "--format", "json"])
    assert json.loads(result.output)["source"]["method"] == "latent-gmm"
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


def test_info_and_check_on_a_damaged_manifest_fail_in_one_line(digits_store, tmp_path):
    path = tmp_path / "damaged"
    shutil.copytree(digits_store.path, path)
    (path / "items.parquet").unlink()
    for command in ("info", "check"):
        result = runner.invoke(app, [command, str(path)])
        assert result.exit_code != 0 and "Traceback" not in result.output
        assert "items.parquet is missing" in result.output
        assert "complete" not in result.output

"""Downloads against a local HTTP server started by the test; never the internet."""

import functools
import hashlib
import http.server
import threading

import numpy as np
import pytest

from modeldx.data import download_file, load_mnist
from modeldx.errors import ChecksumError, DataNotFoundError
from tests.conftest import MNIST_DIR


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    (root / "mnist").mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (root / "mnist" / name).write_bytes((MNIST_DIR / "mnist" / name).read_bytes())
    (root / "bad.gz").write_bytes(b"not the file")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_load_mnist_downloads_into_the_cache(server, tmp_path, monkeypatch):
    monkeypatch.setenv("MODELDX_CACHE", str(tmp_path / "cache"))
    ds = load_mnist("test", root=tmp_path / "empty", download=True, base_urls=[server + "mnist/"],
                    progress=False)
    assert len(ds) == 10000
    cached = tmp_path / "cache" / "mnist" / "t10k-labels-idx1-ubyte.gz"
    assert cached.is_file()
    # the second load reads the cache, with the server gone from the list
    again = load_mnist("test", root=tmp_path / "empty", progress=False)
    assert np.array_equal(again.labels, ds.labels)


def test_wrong_checksum_leaves_nothing_behind(server, tmp_path):
    dest = tmp_path / "out" / "f.gz"
    with pytest.raises(ChecksumError, match="checksum"):
        download_file([server + "bad.gz"], dest, md5="0" * 32, progress=False)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


def test_unreachable_file(server, tmp_path):
    with pytest.raises(DataNotFoundError, match="404"):
        download_file([server + "missing.gz"], tmp_path / "m.gz", md5="0" * 32, progress=False)


def test_falls_back_to_the_next_mirror(server, tmp_path):
    good = (MNIST_DIR / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()
    md5 = hashlib.md5(good).hexdigest()
    dest = download_file([server + "missing.gz", server + "mnist/t10k-labels-idx1-ubyte.gz"],
                         tmp_path / "l.gz", md5=md5, progress=False)
    assert dest.read_bytes() == good

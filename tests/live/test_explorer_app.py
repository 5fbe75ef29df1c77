"""The explorer's routes (FastAPI's TestClient): answers, 404s naming what is missing, Host and token."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from modeldx.live.explorer_app import create_explorer_app
from modeldx.neurons.explore import Explorer

TOKEN = "a-token-long-enough-1234"


@pytest.fixture(scope="module")
def explorer(digits_store, tiny_model):
    return Explorer(digits_store, tiny_model)


@pytest.fixture(scope="module")
def client(explorer):
    return TestClient(create_explorer_app(explorer), base_url="http://127.0.0.1:8765")


def test_the_page_its_files_and_every_route_answer(client, explorer):
    page = client.get("/")
    assert page.status_code == 200 and 'src="static/explore.js"' in page.text
    for name in ("explore.js", "explore.css"):
        assert client.get(f"/static/{name}").status_code == 200
    g = client.get("/api/graph").json()
    assert [layer["name"] for layer in g["layers"]] == explorer.layers
    layer = g["layers"][-1]
    cid = layer["clusters"][0]["id"]
    c = client.get(f"/api/cluster/{layer['name']}/{cid}").json()
    assert c["layer"] == layer["name"] and c["id"] == cid and len(c["matrix"]) == c["size"]
    item = client.get(f"/api/item/{layer['clusters'][0]['top_items'][0]}.png")
    assert item.status_code == 200 and item.headers["content-type"] == "image/png"
    ldam = client.get(f"/api/ldam/{layer['name']}/{cid}.png")
    assert ldam.status_code == 200 and ldam.content[:4] == b"\x89PNG"


@pytest.mark.parametrize(("url", "named"), [
    ("/api/cluster/nope/0", "'nope'"),
    ("/api/cluster/fc2/77", "no cluster 77"),
    ("/api/ldam/nope/0.png", "'nope'"),
    ("/api/ldam/fc2/77.png", "no cluster 77"),
    ("/api/item/999999.png", "no item 999999"),
])
def test_what_does_not_exist_is_a_404_naming_it(client, url, named):
    res = client.get(url)
    assert res.status_code == 404 and named in res.json()["detail"]


def test_ldam_without_the_model_is_refused_with_the_reason(digits_store):
    client = TestClient(create_explorer_app(Explorer(digits_store)), base_url="http://127.0.0.1:8765")
    cid = client.get("/api/graph").json()["layers"][-1]["clusters"][0]["id"]
    res = client.get(f"/api/ldam/fc2/{cid}.png")
    assert res.status_code == 409 and "--checkpoint" in res.json()["detail"]


def test_another_host_is_refused(client):
    # a page of another site whose name was rebound to 127.0.0.1 (DNS rebinding)
    assert client.get("/api/graph", headers={"host": "evil.example:8765"}).status_code == 403
    assert client.get("/", headers={"host": "evil.example:8765"}).status_code == 403


def test_with_a_token_the_data_needs_it_and_the_page_carries_it(explorer):
    client = TestClient(create_explorer_app(explorer, token=TOKEN), base_url="http://127.0.0.1:8765")
    assert client.get("/").status_code == 200  # the page holds no data; its API calls carry ?token=
    assert client.get("/api/graph").status_code == 403
    assert client.get("/api/graph?token=wrong-token-of-some-length").status_code == 403
    assert client.get(f"/api/graph?token={TOKEN}").status_code == 200
    assert client.get("/api/graph", headers={"x-modeldx-token": TOKEN}).status_code == 200
    layer = explorer.layers[-1]
    assert client.get(f"/api/item/0.png?token={TOKEN}").status_code == 200
    assert client.get(f"/api/cluster/{layer}/0").status_code == 403

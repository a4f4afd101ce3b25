"""Triton's own HTTP client (tritonclient.http.InferenceServerClient) against a live
`grefine serve` on the tiny model set. tools/pyclients.sh starts the server and sets
GRF_SERVE_URL (host:port) and GRF_SMALL_PNG (tools/pyclients/small.png, the sample
resized to 96x64; small.rgb beside it holds its RGB8 pixels)."""
import base64
import json
import os
import urllib.request
import uuid

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

URL = os.environ["GRF_SERVE_URL"]
PROMPT = b"Mr. Beans wearing sun glasses with blue doctor suit and stripe tie"


@pytest.fixture(scope="module")
def client():
    c = httpclient.InferenceServerClient(url=URL)
    yield c
    c.close()


@pytest.fixture(scope="module")
def png():
    with open(os.environ["GRF_SMALL_PNG"], "rb") as f:
        return f.read()


def inputs(png, prompt=PROMPT, binary=True):
    img = httpclient.InferInput("image", [1], "BYTES")
    img.set_data_from_numpy(np.array([png], dtype=np.object_), binary_data=True)
    pr = httpclient.InferInput("prompt", [1], "BYTES")
    pr.set_data_from_numpy(np.array([prompt], dtype=np.object_), binary_data=binary)
    return [img, pr]


def test_health(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("assess")
    assert client.is_model_ready("refine")
    assert not client.is_model_ready("nope")


def test_metadata(client):
    meta = client.get_server_metadata()
    assert meta["name"] == "grefine"
    assert "binary_tensor_data" in meta["extensions"]
    for model, outs in [("assess", ["p", "a", "q", "report"]), ("refine", ["p", "a", "q", "report", "image"])]:
        m = client.get_model_metadata(model)
        assert m["name"] == model
        assert [i["name"] for i in m["inputs"]] == ["image", "prompt"]
        assert [o["name"] for o in m["outputs"]] == outs
    with pytest.raises(InferenceServerException, match="unknown model"):
        client.get_model_metadata("nope")


def test_infer_assess(client, png):
    rid = "py-" + uuid.uuid4().hex[:8]
    r = client.infer("assess", inputs(png), request_id=rid, parameters={"dilate": 2})
    assert r.get_response()["id"] == rid
    report = json.loads(r.as_numpy("report")[0])
    assert report["request_id"] == rid
    assert report["params"]["dilate"] == 2
    for name in ("p", "a", "q"):
        got = r.as_numpy(name)
        assert got.dtype == np.float32 and got.shape == (1,)
        assert got[0] == np.float32(report[name]), name  # the FP32 output is the report's score
    assert 0 <= report["q"] <= 1


def test_infer_json_outputs_and_uint8(client, png):
    # JSON (non-binary) prompt and outputs; the same scores as the binary request.
    outs = [httpclient.InferRequestedOutput("q", binary_data=False), httpclient.InferRequestedOutput("p", binary_data=False)]
    r1 = client.infer("assess", inputs(png, binary=False), outputs=outs)
    r2 = client.infer("assess", inputs(png))
    assert r1.as_numpy("q")[0] == r2.as_numpy("q")[0]
    # UINT8 [H, W, 3]: the PNG's pixels (small.rgb, decoded by grefine's imageio) give the same scores.
    with open(os.environ["GRF_SMALL_PNG"][:-4] + ".rgb", "rb") as f:
        rgb = np.frombuffer(f.read(), dtype=np.uint8).reshape(64, 96, 3)
    img = httpclient.InferInput("image", list(rgb.shape), "UINT8")
    img.set_data_from_numpy(rgb)
    pr = httpclient.InferInput("prompt", [1], "BYTES")
    pr.set_data_from_numpy(np.array([PROMPT], dtype=np.object_))
    r3 = client.infer("assess", [img, pr])
    assert json.loads(r3.as_numpy("report")[0])["input"]["pixel_sha256"] == json.loads(r2.as_numpy("report")[0])["input"]["pixel_sha256"]
    assert r3.as_numpy("q")[0] == r2.as_numpy("q")[0]


def test_infer_refine_same_bytes_as_rest(client, png):
    params = {"seed": 4, "steps1": 2, "steps2": 2}
    r = client.infer("refine", inputs(png), parameters=params)
    image = r.as_numpy("image")[0]
    assert image[:8] == b"\x89PNG\r\n\x1a\n"
    body = json.dumps({"image": base64.b64encode(png).decode(), "prompt": PROMPT.decode(), "params": params}).encode()
    req = urllib.request.Request(f"http://{URL}/v1/refine", data=body, headers={"Content-Type": "application/json", "Accept": "image/png"})
    with urllib.request.urlopen(req) as resp:
        assert resp.headers["Content-Type"] == "image/png"
        assert resp.read() == image, "KServe v2 and REST give the same PNG bytes for the same seed"
    report = json.loads(r.as_numpy("report")[0])
    assert report["params"]["seed"] == 4
    assert "stage2" in report["refine"]


def test_infer_errors(client, png):
    with pytest.raises(InferenceServerException, match="steps1"):
        client.infer("refine", inputs(png), parameters={"steps1": 0})
    with pytest.raises(InferenceServerException, match="unknown parameter|colour"):
        client.infer("assess", inputs(png), parameters={"colour": 1})
    with pytest.raises(InferenceServerException, match="decod"):
        client.infer("assess", inputs(b"not an image"))

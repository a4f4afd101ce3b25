"""grefine as a Triton backend, against a real tritonserver (2.51.0, from the pinned
nvidia-pytriton wheel) on the tiny model set, through Triton's own clients (tritonclient
HTTP and gRPC) and perf_analyzer. tools/triton-test.sh sets the environment:

  GRF_GREFINE          the grefine CLI (writes the repository, is the reference)
  GRF_TRITONSERVER     tritonserver
  GRF_TRITON_BACKENDS  the backend directory holding grefine/libtriton_grefine.so
  GRF_PERF_ANALYZER    perf_analyzer; GRF_PERF_LIBS its LD_LIBRARY_PATH
  GRF_MODELS           the tiny model set; GRF_SMALL_PNG the 96x64 sample

The server runs with --model-control-mode=explicit so that the repository API can unload
and load models; the last test stops it with SIGTERM.
"""
import base64
import json
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.request

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

GREFINE = os.environ["GRF_GREFINE"]
MODELS = os.environ["GRF_MODELS"]
PNG_PATH = os.environ["GRF_SMALL_PNG"]
PROMPT = "Mr. Beans wearing sun glasses with blue doctor suit and stripe tie"
ASSESS, REFINE = "grefine_assess", "grefine_refine"
REFINE_PARAMS = {"seed": 4, "steps1": 2, "steps2": 2}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_ready(url, proc, log, timeout=180):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            pytest.fail(f"the server exited with {proc.returncode} before it was ready:\n{tail(log)}")
        try:
            with urllib.request.urlopen(f"http://{url}/v2/health/ready", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"the server was not ready after {timeout} s:\n{tail(log)}")


def tail(path, n=40):
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-n:])


@pytest.fixture(scope="session")
def png():
    with open(PNG_PATH, "rb") as f:
        return f.read()


@pytest.fixture(scope="session")
def repo(tmp_path_factory):
    """`grefine triton-repo` writes the repository the server loads."""
    out = tmp_path_factory.mktemp("repo")
    r = subprocess.run([GREFINE, "--models", MODELS, "--hash-cache", "", "triton-repo", "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(out / ASSESS), str(out / REFINE)]
    for m in (ASSESS, REFINE):
        assert (out / m / "config.pbtxt").is_file() and (out / m / "1").is_dir()
    return out


class Triton:
    def __init__(self, repo, tmp):
        self.http, self.grpc, self.metrics = (f"127.0.0.1:{free_port()}" for _ in range(3))
        self.log = str(tmp / "tritonserver.log")
        cmd = [os.environ["GRF_TRITONSERVER"], f"--model-repository={repo}",
               f"--backend-directory={os.environ['GRF_TRITON_BACKENDS']}",
               "--http-port", self.http.split(":")[1], "--grpc-port", self.grpc.split(":")[1],
               "--metrics-port", self.metrics.split(":")[1], "--allow-gpu-metrics", "false",
               "--model-control-mode=explicit", "--load-model=*", "--exit-timeout-secs", "120",
               "--log-verbose", "1"]  # the backend's "request running" records (test_sigterm_drains)
        self.proc = subprocess.Popen(cmd, stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        wait_ready(self.http, self.proc, self.log)

    def metric(self, name, **labels):
        """The value of one Prometheus sample of Triton's /metrics."""
        with urllib.request.urlopen(f"http://{self.metrics}/metrics") as r:
            text = r.read().decode()
        for line in text.splitlines():
            m = re.match(r"^(\w+)\{([^}]*)\} (\S+)$", line)
            if m and m.group(1) == name:
                got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
                if all(got.get(k) == v for k, v in labels.items()):
                    return float(m.group(3))
        raise KeyError(f"{name}{labels} not in /metrics")


@pytest.fixture(scope="session")
def triton(repo, tmp_path_factory):
    t = Triton(repo, tmp_path_factory.mktemp("triton"))
    yield t
    if t.proc.poll() is None:
        t.proc.send_signal(signal.SIGTERM)
        t.proc.wait(timeout=180)


@pytest.fixture(scope="session")
def serve(tmp_path_factory):
    """`grefine serve` on the same model set (one slot), for the same-bytes check and
    perf_analyzer."""
    addr = f"127.0.0.1:{free_port()}"
    log = str(tmp_path_factory.mktemp("serve") / "serve.log")
    proc = subprocess.Popen([GREFINE, "--models", MODELS, "--hash-cache", "", "serve", "--addr", addr, "--slots", "1"],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)
    wait_ready(addr, proc, log)
    yield addr
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 0, tail(log)


@pytest.fixture(scope="session")
def cli_assess(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli-assess")
    r = subprocess.run([GREFINE, "--models", MODELS, "--hash-cache", "", "assess", "--image", PNG_PATH, "--prompt", PROMPT,
                        "--dilate", "2", "--save-maps", "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with open(out / "report.json") as f:
        return json.load(f), {n: np.load(out / f"{n}.npy") for n in ("p_map", "a_map", "mask")}


@pytest.fixture(scope="session")
def cli_refine(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli-refine")
    args = [a for k, v in REFINE_PARAMS.items() for a in (f"--{k}", str(v))]
    r = subprocess.run([GREFINE, "--models", MODELS, "--hash-cache", "", "refine", "--image", PNG_PATH, "--prompt", PROMPT,
                        "--quiet", "--out", str(out)] + args, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with open(out / "report.json") as f:
        report = json.load(f)
    with open(out / "refined.png", "rb") as f:
        return report, f.read()


_clients = []


def client(triton, proto, **kw):
    """A client of the session's server, closed after the test (tritonserver's drain waits
    for open HTTP connections)."""
    c = httpclient.InferenceServerClient(triton.http, **kw) if proto == "http" else grpcclient.InferenceServerClient(triton.grpc, **kw)
    _clients.append(c)
    return c


@pytest.fixture(autouse=True)
def close_clients():
    yield
    while _clients:
        _clients.pop().close()


def inputs(mod, image, prompt=PROMPT.encode(), image_type="BYTES"):
    img = mod.InferInput("image", [1], image_type)
    if image_type == "BYTES":
        img.set_data_from_numpy(np.array([image], dtype=np.object_))
    else:
        img.set_data_from_numpy(np.array([1.0], dtype=np.float32))
    pr = mod.InferInput("prompt", [1], "BYTES")
    pr.set_data_from_numpy(np.array([prompt], dtype=np.object_))
    return [img, pr]


def mod(proto):
    return httpclient if proto == "http" else grpcclient


def stats(c, model, proto):
    s = c.get_inference_statistics(model) if proto == "http" else c.get_inference_statistics(model, as_json=True)
    st = s["model_stats"][0]
    inf = st["inference_stats"]
    return {"success": int(inf["success"].get("count", 0)), "fail": int(inf["fail"].get("count", 0)),
            "inference": int(st.get("inference_count", 0)), "execution": int(st.get("execution_count", 0))}


def test_model_configuration(triton):
    """Triton parsed the written config.pbtxt and reports it (model configuration
    extension): backend grefine, the tensors and the parameters."""
    c = client(triton, "http")
    for model, task, outs in [(ASSESS, "assess", ["report", "p", "a", "q", "p_map", "a_map", "mask"]),
                              (REFINE, "refine", ["image", "report", "p", "a", "q", "p_map", "a_map", "mask"])]:
        cfg = c.get_model_config(model)
        assert cfg["backend"] == "grefine"
        assert cfg["max_batch_size"] == 0
        assert [(i["name"], i["data_type"], i.get("optional", False)) for i in cfg["input"]] == [
            ("image", "TYPE_STRING", False), ("prompt", "TYPE_STRING", True)]
        assert [o["name"] for o in cfg["output"]] == outs
        assert cfg["parameters"]["task"]["string_value"] == task
        assert cfg["parameters"]["models"]["string_value"] == os.path.abspath(MODELS)
        assert cfg["instance_group"][0]["kind"] == "KIND_CPU"
        meta = c.get_model_metadata(model)
        assert meta["platform"] == "grefine" and [o["name"] for o in meta["outputs"]] == outs


@pytest.mark.parametrize("proto", ["http", "grpc"])
def test_assess_same_as_cli(triton, png, cli_assess, proto):
    """assess through Triton gives the CLI's scores, parts and maps, bit for bit."""
    report, maps = cli_assess
    c = client(triton, proto)
    r = c.infer(ASSESS, inputs(mod(proto), png), parameters={"dilate": 2}, request_id=f"assess-{proto}")
    got = json.loads(r.as_numpy("report")[0])
    assert got["request_id"] == f"assess-{proto}"
    assert got["params"]["dilate"] == 2
    for k in ("p", "a", "q", "mask_fraction", "perceptual", "parts", "prompt_score"):
        assert got[k] == report[k], k
    for k in ("p", "a", "q"):
        v = r.as_numpy(k)
        assert v.dtype == np.float32 and v.shape == (1,) and v[0] == np.float32(report[k]), k
    for k, want in maps.items():
        m = r.as_numpy(k)
        assert m.dtype == np.float32 and m.shape == want.shape == (64, 96), k
        assert np.array_equal(m, want), k


def test_assess_without_prompt_has_no_alignment(triton, png):
    """An empty prompt skips alignment: no a, no a_map (as in `grefine serve`)."""
    i = httpclient.InferInput("image", [1], "BYTES")
    i.set_data_from_numpy(np.array([png], dtype=np.object_))
    r = client(triton, "http").infer(ASSESS, [i])
    names = [o["name"] for o in r.get_response()["outputs"]]
    assert "a" not in names and "a_map" not in names and "q" in names and "p_map" in names
    assert json.loads(r.as_numpy("report")[0])["a"] is None


def serve_refine(serve, png):
    c = httpclient.InferenceServerClient(serve)
    try:
        return c.infer("refine", inputs(httpclient, png), parameters=REFINE_PARAMS).as_numpy("image")[0]
    finally:
        c.close()


@pytest.mark.parametrize("proto", ["http", "grpc"])
def test_refine_same_bytes_as_cli_and_serve(triton, serve, png, cli_refine, proto):
    """The same seed gives the same PNG bytes through Triton, `grefine serve` and
    `grefine refine`, and the same report numbers."""
    report, want = cli_refine
    c = client(triton, proto)
    outs = [mod(proto).InferRequestedOutput(n) for n in ("image", "report", "q")]
    r = c.infer(REFINE, inputs(mod(proto), png), parameters=REFINE_PARAMS, outputs=outs)
    image = r.as_numpy("image")[0]
    assert image[:8] == b"\x89PNG\r\n\x1a\n"
    assert image == want, "Triton and `grefine refine` give the same PNG bytes for the same seed"
    assert image == serve_refine(serve, png), "Triton and `grefine serve` give the same PNG bytes"
    got = json.loads(r.as_numpy("report")[0])
    for k in ("p", "a", "q", "mask_fraction", "parts"):
        assert got[k] == report[k], k
    for stage in ("stage1", "stage2"):
        for k in ("ran", "strength", "steps", "timesteps", "width", "height"):
            assert got["refine"][stage][k] == report["refine"][stage][k], (stage, k)
    assert got["params"]["seed"] == 4
    assert r.as_numpy("q")[0] == np.float32(report["q"])
    resp = r.get_response()
    names = [o["name"] for o in resp["outputs"]] if proto == "http" else [o.name for o in resp.outputs]
    assert sorted(names) == ["image", "q", "report"], "only the named outputs"


@pytest.mark.parametrize("proto", ["http", "grpc"])
def test_bad_requests_are_client_errors(triton, png, proto):
    """Bad input gets a clear client error (HTTP 400, gRPC INVALID_ARGUMENT) and the
    server goes on serving."""
    c, m = client(triton, proto), mod(proto)
    cases = [
        ("a bad image", lambda: c.infer(ASSESS, inputs(m, b"not an image")), "cannot decode image"),
        ("a wrong datatype", lambda: c.infer(ASSESS, inputs(m, png, image_type="FP32")), "data-type is 'FP32'"),
        ("a missing input", lambda: c.infer(ASSESS, inputs(m, png)[1:]), "input image: missing"),
        ("an unknown parameter", lambda: c.infer(ASSESS, inputs(m, png), parameters={"colour": 1}), 'unknown parameter "colour"'),
        ("an out-of-range parameter", lambda: c.infer(REFINE, inputs(m, png), parameters={"steps1": 0}), "steps1: 0 is out of range"),
        ("a parameter of the wrong type", lambda: c.infer(ASSESS, inputs(m, png), parameters={"dilate": "x"}), 'dilate: want an integer, got the string "x"'),
    ]
    for what, call, msg in cases:
        with pytest.raises(InferenceServerException) as e:
            call()
        status = str(e.value.status())
        assert status in ("400", "StatusCode.INVALID_ARGUMENT"), (what, status, e.value.message())
        assert msg in e.value.message(), (what, e.value.message())
        assert c.is_server_live() and c.is_model_ready(ASSESS), what
    r = c.infer(ASSESS, inputs(m, png))
    assert 0 <= r.as_numpy("q")[0] <= 1


def settled(c, model, proto, want=None, timeout=60):
    """The model's statistics once they stop changing (the backend reports a request's
    statistics just after its response, as Triton's own backends do), and, with want,
    once want(stats) holds."""
    t0 = time.time()
    prev = stats(c, model, proto)
    while True:
        time.sleep(0.3)
        cur = stats(c, model, proto)
        if cur == prev and (want is None or want(cur)):
            return cur
        assert time.time() - t0 < timeout, f"statistics of {model} did not settle: {cur}"
        prev = cur


def test_statistics(triton, png):
    """The backend reports its statistics: Triton's per-model counts (statistics
    extension) and its Prometheus metrics count grefine's successes, failures and
    executions."""
    c = client(triton, "http")
    before = settled(c, ASSESS, "http")
    ok0 = triton.metric("nv_inference_request_success", model=ASSESS)
    fail0 = triton.metric("nv_inference_request_failure", model=ASSESS, reason="BACKEND")
    compute0 = triton.metric("nv_inference_compute_infer_duration_us", model=ASSESS)
    for _ in range(3):
        c.infer(ASSESS, inputs(httpclient, png))
    with pytest.raises(InferenceServerException):
        c.infer(ASSESS, inputs(httpclient, b"not an image"))
    after = settled(c, ASSESS, "http", lambda s: s["execution"] - before["execution"] >= 4)
    assert after["success"] - before["success"] == 3
    assert after["fail"] - before["fail"] == 1
    assert after["inference"] - before["inference"] == 3
    assert after["execution"] - before["execution"] == 4
    assert triton.metric("nv_inference_request_success", model=ASSESS) - ok0 == 3
    assert triton.metric("nv_inference_request_failure", model=ASSESS, reason="BACKEND") - fail0 == 1
    assert triton.metric("nv_inference_compute_infer_duration_us", model=ASSESS) > compute0


def wait_running(triton, request_id, timeout=120):
    """Waits for the backend's "request running" record of request_id (Triton's verbose
    log): the request holds a slot and the pipeline is about to run it."""
    t0 = time.time()
    pat = re.compile(r'request_id\\":\\"' + re.escape(request_id) + r'\\",[^\n]*request running')
    while not pat.search(open(triton.log).read()):
        assert time.time() - t0 < timeout, f"request {request_id} did not start"
        time.sleep(0.02)


def test_cancel_stops_a_refine(triton, png):
    """A request the client cancels (gRPC) stops within a denoising step: the backend
    asks Triton at every step and ends the request as CANCELLED. Without that check the
    1000-step refine would run to the end and count as a success."""
    c = client(triton, "grpc")
    before = settled(c, REFINE, "grpc")
    done = []
    ctx = c.async_infer(REFINE, inputs(grpcclient, png), callback=lambda r, e: done.append((r, e)),
                        parameters={"seed": 1, "steps1": 1000, "steps2": 1}, request_id="cancel-1")
    wait_running(triton, "cancel-1")
    time.sleep(0.5)  # into the denoising loop
    t0 = time.time()
    ctx.cancel()
    while stats(c, REFINE, "grpc")["fail"] == before["fail"]:
        assert time.time() - t0 < 120, "the cancelled refine did not end"
        time.sleep(0.1)
    print(f"cancelled refine ended {time.time() - t0:.2f} s after the cancel")
    after = settled(c, REFINE, "grpc")
    assert after["success"] == before["success"], "the cancelled refine must not complete"
    assert after["fail"] - before["fail"] == 1
    with open(triton.log) as f:
        assert '\\"code\\":\\"CANCELLED\\"' in f.read(), "the backend logs the request as CANCELLED"
    # The instance is free again.
    r = c.infer(REFINE, inputs(grpcclient, png), parameters={"seed": 1, "steps1": 1, "steps2": 1})
    assert r.as_numpy("image")[0][:4] == b"\x89PNG"


@pytest.mark.parametrize("proto", ["http", "grpc"])
def test_request_timeout_is_a_deadline(triton, png, proto):
    """Triton's request timeout bounds the request while it runs (checked at every
    denoising step)."""
    c = client(triton, proto)
    t0 = time.time()
    with pytest.raises(InferenceServerException) as e:
        c.infer(REFINE, inputs(mod(proto), png), parameters={"seed": 1, "steps1": 1000, "steps2": 1}, timeout=1_000_000)
    print(f"{proto}: the 1 s timeout ended the refine after {time.time() - t0:.2f} s")
    assert "the request's timeout (1s) passed" in e.value.message()
    assert str(e.value.status()) in ("400", "StatusCode.CANCELLED")


def test_unload_and_load_again(triton, png):
    """Both models unload and load again through the repository API; the reloaded
    instances answer as before."""
    c = client(triton, "http")
    q0 = c.infer(ASSESS, inputs(httpclient, png)).as_numpy("q")[0]
    c.unload_model(ASSESS)
    c.unload_model(REFINE)
    t0 = time.time()
    while any(m.get("state") != "UNAVAILABLE" for m in c.get_model_repository_index()):
        assert time.time() - t0 < 120, c.get_model_repository_index()
        time.sleep(0.2)
    assert not c.is_model_ready(ASSESS)
    with pytest.raises(InferenceServerException):
        c.infer(ASSESS, inputs(httpclient, png))
    c.load_model(ASSESS)
    c.load_model(REFINE)
    assert c.is_model_ready(ASSESS) and c.is_model_ready(REFINE)
    assert c.infer(ASSESS, inputs(httpclient, png)).as_numpy("q")[0] == q0


def perf_analyzer(model, url, tmp_path, png):
    data = tmp_path / "input.json"
    # BYTES data in perf_analyzer's JSON: b64 of the serialised tensor (length-prefixed).
    b64 = base64.b64encode(struct.pack("<I", len(png)) + png).decode()
    data.write_text(json.dumps({"data": [{"image": {"b64": b64}, "prompt": [PROMPT]}]}))
    env = dict(os.environ, LD_LIBRARY_PATH=os.environ["GRF_PERF_LIBS"])
    r = subprocess.run([os.environ["GRF_PERF_ANALYZER"], "-m", model, "-u", url, "-i", "http", "--input-data", str(data),
                        "--concurrency-range", "1", "--measurement-mode", "count_windows", "--measurement-request-count", "5",
                        "--stability-percentage", "1000", "--max-trials", "3"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "Throughput:" in r.stdout
    return r.stdout


def test_perf_analyzer_drives_grefine_serve(serve, png, tmp_path):
    """perf_analyzer reads `grefine serve`'s model configuration
    (/v2/models/assess/config) and runs."""
    perf_analyzer("assess", serve, tmp_path, png)


def test_perf_analyzer_drives_triton(triton, png, tmp_path):
    perf_analyzer(ASSESS, triton.http, tmp_path, png)


def test_sigterm_drains(triton, png):
    """SIGTERM: the refine in flight completes with its answer, and tritonserver exits 0
    (the backend's library stays loaded while Triton finalises it: -z nodelete)."""
    c = client(triton, "http", network_timeout=300)
    res = {}

    def run():
        try:
            res["r"] = c.infer(REFINE, inputs(httpclient, png), parameters={"seed": 2, "steps1": 40, "steps2": 2},
                               outputs=[httpclient.InferRequestedOutput("image")], request_id="drain-1")
            res["t"] = time.time()
        except Exception as e:  # noqa: BLE001 - reported below
            res["e"] = e
        c.close()  # tritonserver's drain waits for open HTTP connections

    th = threading.Thread(target=run)
    th.start()
    wait_running(triton, "drain-1")
    sent = time.time()  # the refine's 40 denoising steps have just begun
    triton.proc.send_signal(signal.SIGTERM)
    th.join(timeout=300)
    assert "e" not in res, f"the request in flight failed during the drain: {res.get('e')}"
    assert res["r"].as_numpy("image")[0][:4] == b"\x89PNG"
    assert triton.proc.wait(timeout=180) == 0, tail(triton.log)
    log = open(triton.log).read()
    assert res["t"] > sent, "the refine was in flight at SIGTERM and answered after it"
    assert re.search(r"Timeout \d+: Found 1 HTTP service connections", log), "Triton waited for the request in flight"
    assert "grefine backend finalised" in log

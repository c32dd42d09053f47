"""A stand-in for hetida designer's backend execution endpoint, for ferry's HTTP sink tests.

POST /api/transformations/execute takes hetida's execution request (`id` or
`revision_group_id`, `wiring` with `input_wirings`/`output_wirings`,
`run_pure_plot_operators`, `job_id`) and answers hetida's execution response (`result`
ok|failure, `output_results_by_output_name`, `output_types_by_output_name`, `error`,
`traceback`, `job_id`). For the Volatility Detection example's wiring (`input_series`,
`window_size`, `window_timestamp_location`, `threshold`) it computes a rolling standard
deviation over the window and the timestamps whose volatility exceeds the threshold.

Fails on cue, by job_id prefix: `fail500-` answers 500 twice per job before succeeding,
`bad400-` answers 400, `down503-` always 503; a request that is not an execution request answers 422 as FastAPI
does. `EXPECT_AUTH` (environment): the exact Authorization header required, else 401.

POST /token is an OAuth2 token endpoint (client credentials grant): with `TOKEN_CLIENT`
(environment, `id:secret`) given as HTTP basic authentication and
`grant_type=client_credentials`, it answers `{"access_token": "oauth-token-N",
"token_type": "Bearer", "expires_in": 3600}` (N counts the tokens issued); else 401.

Usage: hetida_server.py PORT LOG — PORT 0 picks a free one; prints `port=N` once
listening on 127.0.0.1. Every request is appended to LOG as one JSON line (method, path,
auth, content_type, body, status, answer).
"""

import http.server
import json
import os
import re
import statistics
import sys
import threading
import traceback
from datetime import datetime, timedelta

LOCK = threading.Lock()
FAILS = {}
EXPECT_AUTH = os.environ.get("EXPECT_AUTH")


def window(text):
    m = re.fullmatch(r"(\d+)\s*(min|h|s)", text.strip())
    if not m:
        raise ValueError(f"cannot read window_size {text!r}")
    n, unit = int(m.group(1)), m.group(2)
    units = {"min": "minutes", "h": "hours", "s": "seconds"}
    return timedelta(**{units[unit]: n})


def volatility(inputs):
    series = {
        datetime.fromisoformat(k.replace("Z", "+00:00")): float(v)
        for k, v in json.loads(inputs["input_series"]).items()
    }
    size = window(inputs["window_size"])
    threshold = float(inputs["threshold"])
    location = inputs.get("window_timestamp_location", "center")
    if location == "center":
        before, after = size / 2, size / 2
    elif location == "right":
        before, after = size, timedelta(0)
    else:
        before, after = timedelta(0), size
    stamps = sorted(series)
    score = {}
    for t in stamps:
        values = [series[u] for u in stamps if t - before <= u <= t + after]
        score[t] = statistics.pstdev(values) if len(values) > 1 else 0.0
    fmt = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {
        "score": {fmt(t): s for t, s in score.items()},
        "volatile": {fmt(t): s for t, s in score.items() if s > threshold},
    }


def execute(body):
    try:
        req = json.loads(body)
    except ValueError as e:
        return 422, {"detail": [{"msg": f"JSON decode error: {e}", "type": "value_error.jsondecode"}]}
    missing = [k for k in ("wiring", "job_id") if k not in req]
    if not isinstance(req, dict) or ("id" not in req and "revision_group_id" not in req):
        missing.append("id")
    if missing:
        return 422, {"detail": [{"loc": ["body", k], "msg": "field required"} for k in missing]}
    job = str(req["job_id"])
    if job.startswith("fail500-"):
        with LOCK:
            FAILS[job] = FAILS.get(job, 0) + 1
            if FAILS[job] <= 2:
                return 500, {"detail": "runtime service unavailable"}
    if job.startswith("down503-"):
        return 503, {"detail": "runtime service unavailable"}
    if job.startswith("bad400-"):
        return 400, {"detail": f"transformation revision for job {job} cannot be executed"}
    inputs = {
        w["workflow_input_name"]: w.get("filters", {}).get("value")
        for w in req["wiring"].get("input_wirings", [])
    }
    answer = {
        "result": "ok",
        "output_results_by_output_name": {},
        "output_types_by_output_name": {"score": "SERIES", "volatile": "SERIES"},
        "error": None,
        "traceback": None,
        "job_id": job,
    }
    try:
        answer["output_results_by_output_name"] = volatility(inputs)
    except Exception as e:  # hetida answers a failed run with 200 and result=failure
        answer.update(result="failure", error=str(e), traceback=traceback.format_exc(),
                      output_types_by_output_name={})
    return 200, answer


ISSUED = [0]


def token(auth, body):
    import base64
    from urllib.parse import parse_qs

    client = os.environ.get("TOKEN_CLIENT", "")
    expected = "Basic " + base64.b64encode(client.encode()).decode()
    form = parse_qs(body.decode())
    if auth != expected or form.get("grant_type") != ["client_credentials"]:
        return 401, {"error": "invalid_client"}
    with LOCK:
        ISSUED[0] += 1
        n = ISSUED[0]
    return 200, {"access_token": f"oauth-token-{n}", "token_type": "Bearer", "expires_in": 3600}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(n)
        auth = self.headers.get("Authorization")
        if self.path == "/token":
            status, answer = token(auth, body)
        elif self.path != "/api/transformations/execute":
            status, answer = 404, {"detail": "Not Found"}
        elif EXPECT_AUTH is not None and auth != EXPECT_AUTH:
            status, answer = 401, {"detail": "Not authenticated"}
        else:
            status, answer = execute(body)
        out = json.dumps(answer).encode()
        entry = {
            "method": self.command,
            "path": self.path,
            "auth": auth,
            "content_type": self.headers.get("Content-Type"),
            "body": body.decode("utf-8", "replace"),
            "status": status,
            "answer": out.decode(),
        }
        with LOCK:
            with open(sys.argv[2], "a") as f:
                f.write(json.dumps(entry) + "\n")
                f.flush()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_PUT = do_POST
    do_PATCH = do_POST


class Server(http.server.ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True


if __name__ == "__main__":
    server = Server(("127.0.0.1", int(sys.argv[1])), Handler)
    print(f"port={server.server_address[1]}", flush=True)
    server.serve_forever()

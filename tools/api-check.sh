#!/usr/bin/env bash
# Check docs/api.yaml against the real server:
#  1. it is a valid OpenAPI document (openapi-spec-validator);
#  2. a real warden (target/debug/warden, built here) with a TCP API and a token on loopback
#     answers every operation of it the way it says (schemathesis, a bounded number of cases
#     per operation), failing on any 5xx, an undocumented status, a wrong content type or a
#     body that does not match its schema, or valid input refused (a 400 for an `n` the spec
#     allows) and invalid input accepted. `POST /v1/shutdown` (it would end the test) and
#     `follow=true` (a stream that never ends) are left out of the fuzzed copy of the spec.
#
# Both tools are installed from PyPI into a virtualenv (target/api-check-venv, or
# $API_CHECK_VENV) if missing. Bounded in time: about 30 s with the tools installed and
# warden built, and the whole script is killed after 175 s whatever it does (a first run
# that must install and build may need a second try). Exits non-zero on any failure.
#
# Usage: tools/api-check.sh [--examples N]   (default 30 cases per operation)
set -euo pipefail

if [[ -z ${API_CHECK_BOUNDED:-} ]]; then
    export API_CHECK_BOUNDED=1
    exec timeout --kill-after=10 175 "$0" "$@"
fi

cd "$(dirname "$0")/.."
root=$PWD
examples=30
if [[ ${1:-} == --examples ]]; then
    examples=${2:?--examples needs a number}
fi

venv=${API_CHECK_VENV:-$root/target/api-check-venv}
if [[ ! -x $venv/bin/schemathesis || ! -x $venv/bin/openapi-spec-validator ]] ||
    ! "$venv/bin/python3" -c 'import prometheus_client' 2>/dev/null; then
    # prometheus-client: the metrics test parses /metrics with it from this venv.
    echo "api-check: installing openapi-spec-validator, schemathesis and prometheus-client into $venv"
    python3 -m venv "$venv"
    timeout 120 "$venv/bin/pip" install --quiet --disable-pip-version-check \
        openapi-spec-validator schemathesis prometheus-client
fi

echo "api-check: validating docs/api.yaml"
timeout 30 "$venv/bin/openapi-spec-validator" docs/api.yaml

echo "api-check: building warden"
cargo build --quiet -p warden
warden=$root/target/debug/warden

work=$(mktemp -d)
pid=
cleanup() {
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        timeout 20 "$warden" down -c "$work/warden.toml" >/dev/null 2>&1 || kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
cat >"$work/warden.toml" <<EOF
[warden]
api = "127.0.0.1:$port"
api_token = "$token"
shutdown_timeout = "10s"

[services.web]
command = ["sleep", "3600"]

[services.idle]
command = ["sleep", "3600"]
autostart = false
EOF

echo "api-check: starting warden on 127.0.0.1:$port"
"$warden" up -c "$work/warden.toml" >"$work/up.log" 2>&1 &
pid=$!
# Deadline polling: the API answers, or warden died, or 20 s passed.
ready=
for _ in $(seq 200); do
    if ! kill -0 "$pid" 2>/dev/null; then
        break
    fi
    if python3 - "$port" "$token" 2>/dev/null <<'EOF'
import sys, urllib.request
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/v1/status",
                             headers={"Authorization": f"Bearer {sys.argv[2]}"})
urllib.request.urlopen(req, timeout=2).read()
EOF
    then
        ready=1
        break
    fi
    sleep 0.1
done
if [[ -z $ready ]]; then
    echo "api-check: warden did not answer on 127.0.0.1:$port" >&2
    cat "$work/up.log" >&2
    exit 1
fi

# The spec to fuzz: without shutdown and without follow.
"$venv/bin/python" - docs/api.yaml "$work/api.json" <<'EOF'
import json, sys, yaml
spec = yaml.safe_load(open(sys.argv[1]))
del spec["paths"]["/v1/shutdown"]
logs = spec["paths"]["/v1/services/{name}/logs"]["get"]
logs["parameters"] = [p for p in logs["parameters"] if p.get("name") != "follow"]
json.dump(spec, open(sys.argv[2], "w"))
EOF

echo "api-check: schemathesis, $examples cases per operation"
status=0
# From the work dir: schemathesis keeps its state (.schemathesis/) in the current one.
(cd "$work" && timeout 120 "$venv/bin/schemathesis" run "$work/api.json" \
    --url "http://127.0.0.1:$port" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,positive_data_acceptance,negative_data_rejection \
    --max-examples "$examples" \
    --request-timeout 10 \
    --no-color) \
    || status=$?
if ! kill -0 "$pid" 2>/dev/null; then
    echo "api-check: warden died during the run" >&2
    cat "$work/up.log" >&2
    exit 1
fi
if [[ $status -ne 0 ]]; then
    echo "api-check: FAILED (schemathesis exit $status)" >&2
    exit "$status"
fi
echo "api-check: OK"

#!/usr/bin/env bash
# Run: builds the demo web chat (the hush-wasm module, release) and starts the relay serving it at `/`
# on 127.0.0.1:8080 (SQLite in ./hush-relay-data). Open the printed URL in two browsers and chat.
# Extra arguments go to the relay (e.g. --listen 0.0.0.0:8080 --origin https://chat.example).
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/web.sh" run "$@"

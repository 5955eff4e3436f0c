"""Settings that keep third-party libraries from reaching the network, applied on import of the
package (before onnxruntime or ragas load; native code reads them when it starts)."""

from __future__ import annotations

import os

OFFLINE_ENV = {
    # onnxruntime >= 1.29 ships 1DS telemetry on Linux/macOS; this is its full opt-out: no
    # uploader, no device id file, no events (the name changed once, both are honoured).
    "ORT_TELEMETRY_DISABLED": "1",
    "ORT_DISABLE_TELEMETRY": "1",
    "RAGAS_DO_NOT_TRACK": "true",
}


def apply() -> None:
    os.environ.update(OFFLINE_ENV)

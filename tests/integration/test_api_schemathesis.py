"""Property-based run of the live OpenAPI schema (schemathesis CLI): no input may produce a 5xx."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_schemathesis_finds_no_server_errors(api_url: str, api_key: str, tmp_path: Path):
    schemathesis = Path(sys.executable).with_name("schemathesis")
    result = subprocess.run(
        [
            str(schemathesis),
            "run",
            f"{api_url}/openapi.json",
            "--header",
            f"X-API-Key: {api_key}",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "25",
            "--seed",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Server error" not in result.stdout

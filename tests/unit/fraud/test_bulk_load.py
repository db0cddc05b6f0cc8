"""`bulk_load.tsv_text`: what LOAD DATA reads back is exactly what was written."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ledgerguard.fraud.imports.bulk_load import _tsv_rows, tsv_text


def test_nulls_backslashes_and_a_literal_backslash_n_survive(tmp_path: Path):
    rows = pd.DataFrame(
        {
            "external_id": ["plain", "back\\slash", "\\N", "it's"],
            "terminal_id": ["7", None, "8", None],
        }
    )
    text = tsv_text(rows)
    assert text.splitlines() == ["plain\t7", "back\\\\slash\t\\N", "\\\\N\t8", "it's\t\\N"]
    path = tmp_path / "chunk.tsv"
    path.write_text(text)
    assert _tsv_rows(path) == [
        ("plain", "7"),
        ("back\\slash", None),
        ("\\N", "8"),
        ("it's", None),
    ]

"""The web app's vendored browser assets: pinned, present, and nothing loaded from elsewhere."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ledgerguard.web.passwords import hash_password, verify_password
from ledgerguard.web.templating import STATIC, TEMPLATES

ROOT = Path(__file__).resolve().parents[2]


def test_vendored_versions_are_the_locked_ones():
    lock = json.loads((ROOT / "package-lock.json").read_text())["packages"]
    pinned = json.loads((ROOT / "package.json").read_text())["dependencies"]
    vendored = json.loads((STATIC / "vendor" / "versions.json").read_text())
    assert set(vendored) == set(pinned)
    for name, version in vendored.items():
        assert pinned[name] == version, f"{name}: package.json pins {pinned[name]}"
        assert lock[f"node_modules/{name}"]["version"] == version, name


def test_pages_load_only_files_the_package_ships():
    referenced = set()
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text()
        assert not re.search(r"""(src|href)=["']https?://""", text), template.name
        referenced |= set(re.findall(r"""["'](/static/[^"'?]+)""", text))
    referenced |= {
        "/static/vendor/swagger-ui/swagger-ui-bundle.js",
        "/static/vendor/swagger-ui/swagger-ui.css",
        "/static/vendor/redoc/redoc.standalone.js",
    }
    missing = [
        path for path in sorted(referenced) if not (STATIC / path[len("/static/") :]).is_file()
    ]
    assert missing == []


def test_argon2_passwords():
    stored = hash_password("a long enough password")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "a long enough password")
    assert not verify_password(stored, "a long enough passwore")
    assert not verify_password(None, "anything at all")
    assert not verify_password("not a hash", "anything at all")


def test_login_throttle_counts_a_sliding_minute_per_client():
    from ledgerguard.web.throttle import LoginThrottle

    throttle = LoginThrottle(per_minute=3)
    assert [throttle.wait("a", now=t) for t in (0, 1, 2)] == [0, 0, 0]
    assert throttle.wait("a", now=3) == 57  # the first attempt leaves the window at 60
    assert throttle.wait("b", now=3) == 0  # another client is not affected
    assert throttle.wait("a", now=60) == 0
    assert LoginThrottle(per_minute=0).wait("a", now=0) == 0  # disabled

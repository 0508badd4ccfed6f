"""Session ids and tokens for tests: the API takes only 32 lowercase hex digits as a session
(a 128-bit capability), and the views across sessions need the admin token."""

from __future__ import annotations

import hashlib

# The operator's token in the test settings (tests/conftest.py).
ADMIN_TOKEN = "test-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def sid(name: str) -> str:
    """A valid session id, the same for the same name: sid("alice") != sid("bob")."""
    return hashlib.sha256(name.encode()).hexdigest()[:32]

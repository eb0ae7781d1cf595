"""The key encoded catalog offers are signed with: the setting, else one kept locally."""

from __future__ import annotations

import os
import secrets

from proffer_stream.core.settings import Settings

KEY_FILE = "signing-key"


def signing_key(settings: Settings) -> bytes:
    """``PROFFER_SIGNING_KEY``; unset, a random key made once and kept (mode 0600) in
    ``<data_dir>/signing-key``, so that gateways sharing a data dir (``up``) agree and a
    restart keeps encoded offers valid. Production sets the key on every gateway."""
    given = settings.signing_key.get_secret_value()
    if given:
        return given.encode()
    path = settings.data_dir / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip().encode()  # made by another gateway, or before
    with os.fdopen(fd, "w") as file:
        file.write(secrets.token_hex(32) + "\n")
    return path.read_text().strip().encode()

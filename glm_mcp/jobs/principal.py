"""Who a job belongs to: the identity that created it, so that only that identity can list or read it.

A *principal* is a short string, computed once per request and stored with every job:

- ``"server"``: whoever spends the server's own GLM key (every stdio caller, every holder of the
  HTTP token who sends no key of their own): one identity, since the token says "one of us", not who;
- ``"key:<hex>"``: a caller who sent their own key (GLM_MCP_ALLOW_CLIENT_KEYS): an HMAC-SHA256 of
  the key under a random secret kept in the job registry itself, so every process sharing the
  registry computes the same principal while the key itself is never stored;
- ``"sub:<issuer>:<subject>"``: a caller signed in through the identity provider (GLM_MCP_OAUTH_ISSUER): the
  access token's subject, which is unique only per issuer, so the issuer is part of it.

Not to be confused with a job's *owner* (`owner.py`): the process generating a chat job.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import NewType

Principal = NewType("Principal", str)
"""The identity a job belongs to: "server", "key:<hex>" or "sub:<issuer>:<subject>"."""

SERVER = Principal("server")
"""Everyone who spends the server's own key."""

SECRET_BYTES = 32


def key_principal(secret: bytes, key: str) -> Principal:
    """The principal of a caller who brought `key`: a keyed hash, so the registry never holds the key."""
    digest = hmac.new(secret, key.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()
    return Principal(f"key:{digest}")


def subject_principal(issuer: str, subject: str) -> Principal:
    """The principal of a caller whose access token `issuer` issued for `subject`."""
    return Principal(f"sub:{issuer}:{subject}")

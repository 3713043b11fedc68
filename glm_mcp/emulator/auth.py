"""Bearer authentication: raw ``<id>.<secret>`` keys, the SDK's JWT form, and the plan check."""

from __future__ import annotations

import jwt
from jwt.algorithms import HMACAlgorithm
from jwt.utils import base64url_decode

from .config import EmulatorConfig, Plan
from .errors import ApiError


def authenticate(authorization: str | None, plan: Plan, config: EmulatorConfig, now_ms: int) -> str:
    """The key the request is made with (its account, which owns its files and batches), or the 401/429 error
    the platform would answer.

    ``plan`` is the plan of the path prefix the request came in on; a valid key of the other
    plan is refused with 429 / 1113 exactly like the real service does.
    """
    token = (authorization or "").strip()
    scheme, _, rest = token.partition(" ")
    if scheme.lower() == "bearer":
        token = rest.strip()
    if not token:
        raise ApiError(401, "1001", "Authorization header not received; cannot authenticate.")
    key = token if config.plan_of(token) is not None else _jwt_key(token, config, now_ms)
    key_plan = config.plan_of(key)
    assert key_plan is not None  # a configured key, or the one a JWT was signed with
    if key_plan is not plan:
        raise ApiError(
            429,
            "1113",
            "Insufficient balance or no resource package. Please recharge. "
            f"(emulator: this key belongs to the {key_plan.name.lower()} plan, "
            f"whose endpoint is {key_plan.prefix})",
        )
    return key


_HS256 = HMACAlgorithm(HMACAlgorithm.SHA256)
"""Used directly rather than through ``jwt.decode``, which warns about the short secrets that
platform keys have (a process-wide warning the emulator has no business raising)."""


def _jwt_key(token: str, config: EmulatorConfig, now_ms: int) -> str:
    """The key that signed a JWT; unknown raw keys and bad tokens raise 401."""
    if "." not in token:
        raise ApiError(401, "1002", "Invalid Authorization token.")
    if token.count(".") != 2:
        raise ApiError(401, "1000", "Authentication failed: unknown API key.")
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.DecodeError as exc:
        raise ApiError(401, "1002", "Invalid Authorization token.") from exc
    if header.get("alg") != "HS256":
        raise ApiError(401, "1002", "Invalid Authorization token: the SDK signs with HS256.")
    signing_input, _, signature = token.rpartition(".")
    # Key ids are not unique in every configuration (the defaults share "emulator"), so every
    # key with the claimed id gets a chance to verify the signature.
    for key in (*config.api_keys, *config.coding_keys):
        key_id, _, secret = key.partition(".")
        if key_id == claims.get("api_key") and _HS256.verify(
            signing_input.encode(), _HS256.prepare_key(secret), base64url_decode(signature)
        ):
            _check_expiry(claims.get("exp"), now_ms)
            return key
    raise ApiError(401, "1000", "Authentication failed: unknown API key or bad token signature.")


def _check_expiry(exp: object, now_ms: int) -> None:
    """The platform counts ``exp`` in milliseconds, so a seconds value reads as long expired."""
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise ApiError(401, "1002", "Invalid Authorization token: no numeric exp claim.")
    if exp < now_ms:
        raise ApiError(401, "1003", "Authorization token expired.")

"""Cost asked before it is spent: a call estimated above GLM_CONFIRM_ABOVE asks the user first, as its protocol
era asks for input.

A tool says what a call is about to cost (a `Spend`: the amount, what it buys, what the figure is based on) and
awaits `confirm_spend` before it sends anything; this module, which knows no tool, decides whether to ask and how:

- nothing is asked when GLM_CONFIRM_ABOVE is off, or the estimate is not above it (or the tool has none);
- on 2026-07-28 the call is answered with an `InputRequiredResult` holding one form elicitation (a boolean
  `confirm`); the client asks the user and sends the call again with the answer in `inputResponses`, and the
  tool runs again from the top up to here. The request's key is made of a digest of the question, so an answer
  counts only for the very estimate it was given, and no `requestState` is needed: the answer finds its question
  on any replica, and after a restart. A call the tasks extension may answer as a task asks the same way, before
  any job (so any task) exists, as the extension asks of input required before a task is created;
- on the earlier versions, an `elicitation/create` request is sent on the call's own session (stdio, sessionful
  HTTP) and awaited;
- a client that cannot be asked (it declared no form elicitation, or it speaks a 2025 version to a stateless HTTP
  server, which cannot send it a request) gets `SpendUnconfirmed`: the estimate, and how to raise the threshold.

Yes lets the call go on; no, or a dismissed question, ends it with `SpendDeclined`: nothing sent, nothing retried.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated

from mcp.server.elicitation import AcceptedElicitation, render_elicitation_schema
from mcp.server.mcpserver import Context
from mcp.shared.exceptions import MCPError
from mcp_types import ElicitRequest, ElicitRequestFormParams, ElicitResult, InputRequiredResult
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, ConfigDict, Field

from glm_mcp.errors import SpendDeclined, SpendUnconfirmed
from glm_mcp.server.state import AppState

__all__ = ["QUESTION_KEY_PREFIX", "Consent", "InputRequired", "Spend", "confirm_spend", "question_key"]

QUESTION_KEY_PREFIX = "glm-mcp/confirm-spend/"
"""How the key of a confirmation in `inputRequests` begins; a digest of the question follows."""


@dataclass(frozen=True, slots=True)
class Spend:
    """What a call is about to cost, as its tool estimates it."""

    amount: float
    what: str
    """What it buys, for the user: "generate_video: one video with cogvideox-3"."""
    basis: str
    """What the figure is based on: the price table's row, the tokenizer's count."""
    currency: str = "USD"
    """The price table's currency: USD for the built-in table, "" for prices of GLM_PRICES (written in any)."""

    def said(self) -> str:
        """The estimate in a few words: "about 0.2 USD (generate_video: one video with cogvideox-3)"."""
        unit = f" {self.currency}" if self.currency else ""
        figure = f"{self.amount:,.2f}" if self.amount >= 100 else f"{self.amount:.4g}"
        return f"about {figure}{unit} ({self.what})"


class Consent(BaseModel):
    """The form the user answers: one boolean."""

    model_config = ConfigDict(defer_build=True)

    confirm: Annotated[bool, Field(title="Spend it", description="Yes: make the call and pay for it.")] = False


class InputRequired(Exception):
    """Raised through a tool's handler to answer its call with `result` (2026-07-28's request for input) instead;
    the registration wrapper returns it as the call's answer."""

    def __init__(self, result: InputRequiredResult) -> None:
        super().__init__("the call needs the user's input first")
        self.result = result


async def confirm_spend(app: AppState, ctx: Context, spend: Spend | None) -> None:
    """Returns when the call may spend `spend`: it is not above GLM_CONFIRM_ABOVE, or the user said yes.

    Raises `InputRequired` (2026-07-28: ask, then the call comes again), `SpendDeclined` (the user said no) or
    `SpendUnconfirmed` (nobody could be asked). Call it after every check of the call's own and before anything
    is sent: a declined call must have cost nothing.
    """
    threshold = app.settings.models.confirm_above
    if spend is None or threshold is None or spend.amount <= threshold:
        return
    question = _question(spend, threshold)
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        _ask_by_input_required(ctx, spend, threshold, question)
    else:
        await _ask_by_request(ctx, spend, threshold, question)


def question_key(question: str) -> str:
    """The key of `question` in `inputRequests`: its digest, so an answer is an answer to exactly that question."""
    return QUESTION_KEY_PREFIX + hashlib.sha256(question.encode()).hexdigest()[:24]


def _question(spend: Spend, threshold: float) -> str:
    return (
        f"Spend {spend.said()}? The estimate is based on {spend.basis}. It is above GLM_CONFIRM_ABOVE "
        f"({threshold:g}), so glm-mcp asks first: nothing is sent unless you confirm."
    )


def _ask_by_input_required(ctx: Context, spend: Spend, threshold: float, question: str) -> None:
    """2026-07-28: the answer if the call came back with one, else the question (`InputRequired`)."""
    key = question_key(question)
    answer = (ctx.input_responses or {}).get(key)
    if isinstance(answer, ElicitResult):
        _settle(answer.action == "accept" and _confirmed(answer.content), spend)
        return
    why = _cannot_elicit(ctx)
    if why:
        raise SpendUnconfirmed(spend.said(), spend.amount, threshold, why)
    form = ElicitRequestFormParams(message=question, requested_schema=render_elicitation_schema(Consent))
    raise InputRequired(InputRequiredResult(input_requests={key: ElicitRequest(params=form)}))


async def _ask_by_request(ctx: Context, spend: Spend, threshold: float, question: str) -> None:
    """The 2025 versions: an `elicitation/create` request on the call's session, awaited."""
    if not ctx.session.can_send_request:
        why = (
            "this HTTP server is stateless, so it cannot send a request to a client speaking a 2025 version of MCP "
            "(run it with --sessionful, or use a client that speaks 2026-07-28)"
        )
        raise SpendUnconfirmed(spend.said(), spend.amount, threshold, why)
    why = _cannot_elicit(ctx)
    if why:
        raise SpendUnconfirmed(spend.said(), spend.amount, threshold, why)
    try:
        outcome = await ctx.elicit(question, Consent)
    except ValueError:  # accepted with no answer, or one that is not the form's: not a yes
        _settle(False, spend)
        return
    except MCPError as exc:
        why = f"the client answered the question with an error ({exc.error.message[:200]})"
        raise SpendUnconfirmed(spend.said(), spend.amount, threshold, why) from None
    _settle(isinstance(outcome, AcceptedElicitation) and outcome.data.confirm, spend)


def _cannot_elicit(ctx: Context) -> str:
    """Why this client cannot be asked a form question, or "" when it can (a bare `elicitation: {}` is a form)."""
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    if elicitation is not None and (elicitation.form is not None or elicitation.url is None):
        return ""
    return "the client declared no form elicitation, the way MCP asks a user a question"


def _confirmed(content: object) -> bool:
    return isinstance(content, dict) and content.get("confirm") is True


def _settle(confirmed: bool, spend: Spend) -> None:
    if not confirmed:
        raise SpendDeclined(spend.said(), spend.amount)

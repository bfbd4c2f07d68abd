"""The two small conversations: ``/enroll`` (consent, then a selfie) and ``/forget`` (confirm).

States are named constants; ``enroll.mmd`` and ``forget.mmd`` beside this file draw the state
machines. The state of each conversation is a row in the store, per (user, chat), expiring after
``ttl_s`` seconds, so it survives a restart and any worker can take the next step. A photo sent
with ``/enroll`` waits for consent only as its face embedding (never the photo), in that row.

Each step records the platform request that made it (:mod:`core.app.requests`). When a worker died
after taking a step but before its answer reached the user, the platform delivers the same request
again, and it gets the same answer (:meth:`Conversations.replay`) rather than being taken for the
user's next message; that is why a finished enrolment stays as :attr:`Step.ENROLLED` until it expires.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum

import numpy as np

from core.app import texts
from core.app.i18n import _
from core.app.replies import Action, Button, Reply
from core.app.requests import current_request
from core.errors import MoodtunesError
from core.storage import Store
from core.vision.recognizer import Recognizer

log = logging.getLogger(__name__)

TTL_S = 600.0
"""A conversation left alone this many seconds is forgotten."""


class Step(StrEnum):
    """Where a user is in a conversation."""

    ENROLL_CONSENT = "enroll-consent"
    """/enroll was sent; waiting for "Yes, enrol me" or "No" (a photo given with /enroll waits here)."""
    ENROLL_SELFIE = "enroll-selfie"
    """Consent given; the next photo from this user in this chat is enrolled. Any command ends it."""
    FORGET_CONFIRM = "forget-confirm"
    """/forget was sent; waiting for "Yes, delete" or "No"."""
    ENROLLED = "enrolled"
    """The face was stored; kept only to answer a redelivery of that request the same way."""


class Conversations:
    """Enrolment and forgetting, one step per message, state in the store.

    Args:
        store: the store.
        recognizer: enrols faces.
        ttl_s: how long a question waits for its answer, seconds.
        clock: Unix time (tests pass a fake).
    """

    def __init__(
        self,
        store: Store,
        recognizer: Recognizer,
        ttl_s: float = TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.recognizer = recognizer
        self.ttl_s = ttl_s
        self._clock = clock

    async def step(self, user: int, chat: int) -> Step | None:
        """The user's open step in the chat, None if there is none (a finished enrolment is none)."""
        conversation = await self.store.get_conversation(user, chat, self._clock())
        if conversation is None or conversation.step == Step.ENROLLED:
            return None
        return Step(conversation.step)

    async def replay(self, user: int, chat: int) -> Reply | None:
        """The answer again, when the request being handled is the one that made the current step
        (a redelivery after a worker died before answering); None otherwise."""
        request = current_request()
        conversation = await self.store.get_conversation(user, chat, self._clock())
        if request is None or conversation is None or conversation.request != request:
            return None
        log.info("replaying the answer to a redelivered request user=%s step=%s", user, conversation.step)
        if conversation.step == Step.ENROLLED:
            samples = await self.store.count_samples(user, chat, self.recognizer.model_id)
            return _enrolled(samples)
        if conversation.step == Step.ENROLL_SELFIE:
            return Reply(_(texts.SEND_SELFIE), closes_question=True)
        return None  # a question: asking it again is the same answer

    async def ask_enroll(self, user: int, chat: int, embedding: np.ndarray | None = None) -> Reply:
        """/enroll: ask for consent; ``embedding`` is the face of a photo sent with the command."""
        await self.store.set_conversation(
            user,
            chat,
            Step.ENROLL_CONSENT,
            self._clock() + self.ttl_s,
            self.recognizer.model_id if embedding is not None else None,
            embedding,
            current_request(),
        )
        return Reply(
            _(texts.CONSENT),
            buttons=(Button(_(texts.ENROLL_YES), Action.ENROLL_YES), Button(_(texts.NO), Action.ENROLL_NO)),
        )

    async def ask_forget(self, user: int, chat: int) -> Reply:
        """/forget: ask to confirm."""
        await self.store.set_conversation(
            user, chat, Step.FORGET_CONFIRM, self._clock() + self.ttl_s, request=current_request()
        )
        return Reply(
            _(texts.FORGET_CONFIRM),
            buttons=(Button(_(texts.FORGET_YES), Action.FORGET_YES), Button(_(texts.NO), Action.FORGET_NO)),
        )

    async def end_selfie_step(self, user: int, chat: int) -> None:
        """Any command ends a "send me a selfie" step (as the reply to consent says)."""
        await self.store.end_conversation(user, chat, Step.ENROLL_SELFIE)

    async def answer(
        self, user: int, chat: int, action: Action, forget: Callable[[int], Awaitable[Reply]]
    ) -> Reply:
        """A Yes/No button; ``forget(user)`` deletes the user when they confirm /forget."""
        replayed = await self.replay(user, chat)
        if replayed is not None:
            return replayed
        conversation = await self.store.get_conversation(user, chat, self._clock())
        step = Step(conversation.step) if conversation is not None else None
        if action in (Action.ENROLL_YES, Action.ENROLL_NO):
            if step is not Step.ENROLL_CONSENT or conversation is None:
                return Reply(_(texts.QUESTION_EXPIRED).format(command="enroll"), error=True)
            if action is Action.ENROLL_NO:
                await self.store.end_conversation(user, chat)
                return Reply(_(texts.ENROLL_CANCELLED), closes_question=True)
            if conversation.embedding is not None and conversation.model == self.recognizer.model_id:
                return await self._store_face(user, chat, conversation.embedding)
            await self.store.set_conversation(
                user, chat, Step.ENROLL_SELFIE, self._clock() + self.ttl_s, request=current_request()
            )
            return Reply(_(texts.SEND_SELFIE), closes_question=True)
        if step is not Step.FORGET_CONFIRM:
            return Reply(_(texts.QUESTION_EXPIRED).format(command="forget"), error=True)
        await self.store.end_conversation(user, chat)
        if action is Action.FORGET_NO:
            return Reply(_(texts.FORGET_CANCELLED), closes_question=True)
        return await forget(user)

    async def enroll_selfie(self, user: int, chat: int, rgb: np.ndarray) -> Reply:
        """The selfie sent after consent."""
        try:
            analysis = await self.recognizer.enrollment(rgb)
        except MoodtunesError as exc:
            log.info("enrol refused user=%s reason=%s", user, exc.code)
            return Reply(_(texts.ENROLL_RETRY).format(reason=exc.localized()), error=True)
        return await self._store_face(user, chat, analysis.embedding)

    async def _store_face(self, user: int, chat: int, embedding: np.ndarray) -> Reply:
        try:
            samples = await self.recognizer.enroll_embedding(user, chat, embedding)
        except MoodtunesError as exc:
            await self.store.end_conversation(user, chat)
            log.info("enrol refused user=%s reason=%s", user, exc.code)
            return Reply(exc.localized(), error=True, closes_question=True)
        await self.store.set_conversation(
            user, chat, Step.ENROLLED, self._clock() + self.ttl_s, request=current_request()
        )
        log.info("enrolled user=%s chat=%s samples=%d", user, chat, samples)
        return _enrolled(samples)


def _enrolled(samples: int) -> Reply:
    more = "" if samples >= 3 else _(texts.ENROLL_MORE)
    return Reply(_(texts.ENROLLED).format(samples=samples) + more, closes_question=True)

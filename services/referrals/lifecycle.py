"""Every change of a referral's status, each with its events, in the caller's transaction.

Intake (``submit``), deciding a referral that waited for its programme, withdraw and
decline, attachment, and the sweep that settles referrals left waiting. State and
events are written together (transactional outbox); routes commit, event handlers
leave the commit to the consumer.

Duplicates under concurrency (contract §2.1, "exactly one accepted"): the deciding
transaction takes PostgreSQL advisory locks on every key the referral has (programme +
NINO, programme + family name/date of birth/postcode), sorted, *before* it looks for a
live referral of the same person. Any two referrals that could be the same person share
a key, so their decisions are serialised by PostgreSQL, and the second one's lookup
(a new statement, so a new READ COMMITTED snapshot) sees the first one committed. A
unique index cannot express the rule on its own (NINO when both have one, otherwise
the name key), and SERIALIZABLE would make partners' posts fail and retry under load;
the locks cost one statement and only ever make the same person wait.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.referrals import store
from services.referrals.domain import (
    ATTACHABLE_STATUSES,
    UNKNOWN_PROGRAMME,
    Eligibility,
    HistoryEntry,
    Outcome,
    PersonKeys,
    ProgrammeRules,
    Status,
    Submission,
    Transition,
    age_band,
    age_on,
    as_json,
    assess,
    grants_attachment,
    history_for,
    is_same_request,
    outcome_of,
    programme_lock_id,
    today_uk,
)
from services.referrals.store import ReferralRecord
from shared.consistency import wait_for
from shared.db import driver_transaction
from shared.errors import Problem, conflict
from shared.events.casework import AttachmentRequested, ParticipantAttached
from shared.events.envelope import EventPayload
from shared.events.gateway import ProgrammeDefined
from shared.events.referrals import (
    AttachmentAnswered,
    Circumstances,
    PersonDetails,
    ReferralAccepted,
    ReferralStatusChanged,
)
from shared.logging import get_logger
from shared.outbox import Outbox

log = get_logger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class ProgrammeCache:
    """Programme definitions this process has read. They never change once defined, so
    a definition read once is good for the life of the process; absence is not cached."""

    def __init__(self) -> None:
        self._rules: dict[str, ProgrammeRules] = {}

    def get(self, code: str) -> ProgrammeRules | None:
        return self._rules.get(code)

    def put(self, rules: ProgrammeRules) -> None:
        self._rules[rules.code] = rules


# --- events --------------------------------------------------------------------------------


def _status_changed(
    referral: ReferralRecord, *, status: Status, previous: Status | None, at: datetime
) -> ReferralStatusChanged:
    """What reporting, the gateway's webhooks and casework's routing need; no names,
    NINO, date of birth, postcode, phone or notes."""
    initial = status is Status.RECEIVED
    return ReferralStatusChanged(
        referral_id=referral.id,
        external_ref=referral.external_ref,
        programme=referral.programme,
        source=referral.source,
        referrer_id=referral.referrer_id,
        provider_id=None if initial else referral.provider_id,
        status=status.value,
        previous_status=previous.value if previous is not None else None,
        reasons=[] if initial else list(referral.reasons),
        duplicate_of=None if initial else referral.duplicate_of,
        referred_on=referral.referred_on,
        local_authority=referral.person["local_authority"],
        benefit=referral.circumstances["benefit"],
        gender=referral.person.get("gender"),
        age_band=age_band(age_on(referral.date_of_birth, referral.referred_on)),
        changed_at=at,
        sequence=1 if initial else len(referral.history),
    )


def _accepted(referral: ReferralRecord) -> ReferralAccepted:
    """The person's details, for the provider's casework only."""
    assert referral.provider_id is not None
    return ReferralAccepted(
        referral_id=referral.id,
        programme=referral.programme,
        provider_id=referral.provider_id,
        source=referral.source,
        referred_on=referral.referred_on,
        person=PersonDetails.model_validate(referral.person),
        circumstances=Circumstances.model_validate(referral.circumstances),
    )


def _events_for_change(
    referral: ReferralRecord, previous: Status | None, at: datetime
) -> list[EventPayload]:
    """accepted (person details) goes before status_changed(accepted), so casework knows
    the person by the time anyone can be told the referral was accepted."""
    events: list[EventPayload] = []
    if referral.status is Status.ACCEPTED:
        events.append(_accepted(referral))
    events.append(_status_changed(referral, status=referral.status, previous=previous, at=at))
    return events


def _events_for_new(referral: ReferralRecord, at: datetime) -> list[EventPayload]:
    events: list[EventPayload] = [
        _status_changed(referral, status=Status.RECEIVED, previous=None, at=at)
    ]
    if referral.status is not Status.RECEIVED:
        events += _events_for_change(referral, Status.RECEIVED, at)
    return events


async def _publish(
    session: AsyncSession, outbox: Outbox, referral_id: uuid.UUID, events: list[EventPayload]
) -> None:
    # aggregate_id = the referral: the relay keeps one referral's events in order.
    await outbox.add_many(session, [(event, referral_id) for event in events])


# --- deciding --------------------------------------------------------------------------------


async def _decide(
    session: AsyncSession,
    rules: ProgrammeRules,
    *,
    referral_id: uuid.UUID,
    keys: PersonKeys,
    benefit: str,
    date_of_birth: date,
    referred_on: date,
    local_authority: str,
    received_at: datetime,
) -> Outcome:
    eligibility = assess(
        rules,
        benefit=benefit,
        date_of_birth=date_of_birth,
        referred_on=referred_on,
        local_authority=local_authority,
    )
    duplicate_of = None
    if eligibility.eligible:
        await store.lock(session, keys.lock_ids())
        duplicate_of = await store.find_live_match(
            session, keys, exclude_id=referral_id, received_at=received_at
        )
    return outcome_of(eligibility, duplicate_of)


async def _wait_for_programme(
    session: AsyncSession, cache: ProgrammeCache, code: str, wait_seconds: float
) -> ProgrammeRules | None:
    """Poll for a definition not heard of yet (§8), without holding a pooled connection
    while waiting: a burst of referrals for a misspelt programme must not starve the
    pool for everyone else."""

    async def fetch() -> ProgrammeRules | None:
        try:
            return await store.load_programme(session, code)
        finally:
            await session.rollback()  # ends the read and hands the connection back

    rules = await wait_for(fetch, timeout=wait_seconds)
    if rules is not None:
        cache.put(rules)
    return rules


# --- intake --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submitted:
    referral: ReferralRecord
    created: bool  # False: a retry, answered with the referral already stored


class _AlreadyUsed(Exception):
    """The referral's external_ref, or its Idempotency-Key, was taken meanwhile."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


async def submit(
    session: AsyncSession,
    engine: AsyncEngine,
    outbox: Outbox,
    cache: ProgrammeCache,
    *,
    referrer_id: uuid.UUID,
    source: str,
    submission: Submission,
    idempotency_key: str | None,
    programme_wait_seconds: float,
    now: datetime | None = None,
) -> Submitted:
    """Store a new referral and decide it, or recognise a retry (contract §2).

    The happy path is four round trips on the driver's connection: ``BEGIN`` with the
    person's locks, the match lookup, one statement inserting the referral with its
    events (and key), ``COMMIT``. Retries and waits use ``session``.
    """
    stamped_by_caller = now is not None
    now = now or utcnow()
    today = today_uk(now)
    fingerprint = submission.fingerprint()

    def replay(existing: ReferralRecord | None, what: str) -> Submitted:
        if existing is None:  # it was there a moment ago and nothing deletes referrals
            raise Problem(503, "Please retry the request.", headers={"Retry-After": "1"})
        if not is_same_request(
            existing.stored_request,
            fingerprint=fingerprint,
            referred_on=submission.referred_on,
            today=today,
        ):
            raise conflict(f"This {what} was already used for a different referral.")
        log.info("referral retry answered", referral_id=str(existing.id))
        return Submitted(existing, created=False)

    if idempotency_key is not None:
        existing = await store.get_by_idempotency_key(session, referrer_id, idempotency_key)
        if existing is not None:
            return replay(existing, "Idempotency-Key")

    code = submission.programme
    rules = cache.get(code)
    if rules is None:
        # A retry needs no programme: answer it before any waiting.
        existing = await store.get_by_external_ref(session, referrer_id, submission.external_ref)
        if existing is not None:
            return replay(existing, "external_ref")
        rules = await _wait_for_programme(session, cache, code, programme_wait_seconds)
        if not stamped_by_caller:
            # Stamped when stored, not when it arrived: a referral stored while this one
            # waited must not carry a later updated_at, or a partner polling from it
            # (updated_since) would never list this one.
            now = utcnow()
            today = today_uk(now)
    await session.rollback()  # what it read is done with: its connection goes back now

    referral_id = uuid.uuid4()
    referred_on = submission.referred_on or today
    keys = submission.keys()
    person = submission.person

    def assessed(rules: ProgrammeRules) -> Eligibility:
        return assess(
            rules,
            benefit=submission.circumstances.benefit,
            date_of_birth=person.date_of_birth,
            referred_on=referred_on,
            local_authority=person.local_authority,
        )

    eligibility = assessed(rules) if rules is not None else None
    if rules is None:
        # Serialise with the programme.defined handler: either it has committed the
        # definition (we see it below) or it will see this referral waiting.
        locks = [programme_lock_id(code)]
    else:
        locks = keys.lock_ids() if eligibility and eligibility.eligible else []
    try:
        async with driver_transaction(engine, first=store.lock_statements(locks)) as driver:
            if rules is None and (rules := await store.load_programme_on(driver, code)):
                cache.put(rules)
                eligibility = assessed(rules)
                if eligibility.eligible:
                    await driver.execute(";".join(store.lock_statements(keys.lock_ids())))
            outcome: Outcome | None = None
            if eligibility is not None:
                duplicate_of = None
                if eligibility.eligible:
                    duplicate_of = await store.find_live_match_on(
                        driver, keys, exclude_id=referral_id, received_at=now
                    )
                outcome = outcome_of(eligibility, duplicate_of)
            status = outcome.status if outcome is not None else Status.RECEIVED
            values = {
                "id": referral_id,
                "referrer_id": referrer_id,
                "source": source,
                "external_ref": submission.external_ref,
                "programme": code,
                "referred_on": referred_on,
                "referred_on_defaulted": submission.referred_on is None,
                "status": status.value,
                "provider_id": outcome.provider_id if outcome else None,
                "reasons": list(outcome.reasons) if outcome else [],
                "duplicate_of": outcome.duplicate_of if outcome else None,
                "history": [e.as_json() for e in history_for(status, now)],
                "person": as_json(person),
                "circumstances": as_json(submission.circumstances),
                "consent": as_json(submission.consent),
                "notes": submission.notes,
                "nino": keys.nino,
                "family_key": keys.family_key,
                "date_of_birth": keys.date_of_birth,
                "postcode_key": keys.postcode_key,
                "fingerprint": fingerprint,
                "received_at": now,
                "updated_at": now,
            }
            referral = store.new_record(values)
            # aggregate_id = the referral: the relay keeps one referral's events in order.
            events = outbox.document(
                [(event, referral_id) for event in _events_for_new(referral, now)],
                occurred_at=now,
            )
            inserted = await store.insert_new_referral(
                driver, values, events=events, idempotency_key=idempotency_key
            )
            # Either undoes the whole transaction: nothing is half-applied.
            if not inserted.stored:  # this partner used the external_ref a moment ago
                raise _AlreadyUsed("external_ref")
            if idempotency_key is not None and not inserted.key_kept:
                raise _AlreadyUsed("Idempotency-Key")  # a concurrent request with it won
    except _AlreadyUsed as used:
        if used.what == "external_ref":
            existing = await store.get_by_external_ref(
                session, referrer_id, submission.external_ref
            )
        else:
            assert idempotency_key is not None
            existing = await store.get_by_idempotency_key(session, referrer_id, idempotency_key)
        return replay(existing, used.what)
    log.info(
        "referral received",
        referral_id=str(referral.id),
        programme=code,
        status=referral.status.value,
    )
    return Submitted(referral, created=True)


# --- deciding referrals that waited for their programme --------------------------------------


async def decide_waiting(
    session: AsyncSession,
    outbox: Outbox,
    referral: ReferralRecord,
    rules: ProgrammeRules,
    *,
    now: datetime,
) -> ReferralRecord | None:
    """Decide a ``received`` referral (locked by the caller) now its programme is known."""
    outcome = await _decide(
        session,
        rules,
        referral_id=referral.id,
        keys=referral.keys,
        benefit=referral.circumstances["benefit"],
        date_of_birth=referral.date_of_birth,
        referred_on=referral.referred_on,
        local_authority=referral.person["local_authority"],
        received_at=referral.received_at,
    )
    return await _apply(session, outbox, referral, outcome, now=now)


async def _apply(
    session: AsyncSession,
    outbox: Outbox,
    referral: ReferralRecord,
    outcome: Outcome,
    *,
    now: datetime,
) -> ReferralRecord | None:
    updated = await store.change_status(
        session,
        referral.id,
        outcome=outcome,
        entry=HistoryEntry(outcome.status, now),
        updated_at=now,
        expected=[Status.RECEIVED],
    )
    if updated is not None:
        await _publish(
            session, outbox, updated.id, _events_for_change(updated, Status.RECEIVED, now)
        )
        log.info(
            "waiting referral decided",
            referral_id=str(updated.id),
            programme=updated.programme,
            status=updated.status.value,
        )
    return updated


async def programme_defined(
    session: AsyncSession, outbox: Outbox, payload: ProgrammeDefined, *, now: datetime | None = None
) -> int:
    """Keep the definition and decide every referral that was waiting for it, oldest
    first (so the first referral of a person is the one accepted). Returns how many."""
    await store.lock(session, [programme_lock_id(payload.code)])
    # Stamped once the lock is ours, so the decisions carry no time from before an
    # intake that held it committed (updated_since readers poll by these times).
    now = now or utcnow()
    await store.store_programme(
        session,
        {
            "code": payload.code,
            "name": payload.name,
            "eligible_benefits": list(payload.eligible_benefits),
            "min_age": payload.min_age,
            "max_age": payload.max_age,
            "providers": [p.model_dump(mode="json") for p in payload.providers],
        },
    )
    # The first definition stored wins (definitions are immutable).
    rules = await store.load_programme(session, payload.code)
    assert rules is not None
    decided = 0
    for referral in await store.pending_for_programme(session, payload.code):
        if await decide_waiting(session, outbox, referral, rules, now=now) is not None:
            decided += 1
    return decided


async def settle_waiting(
    session_factory: async_sessionmaker[AsyncSession],
    outbox: Outbox,
    *,
    unknown_after: timedelta,
    batch: int,
    now: datetime | None = None,
) -> int:
    """The sweep: decide waiting referrals whose programme is now known (a safety net
    for the handler), and reject as ``unknown_programme`` those that have waited longer
    than ``unknown_after``. Returns how many referrals it settled."""
    given = now
    now = now or utcnow()
    deadline = now - unknown_after
    async with session_factory() as session:
        codes = await store.programmes_to_settle(session, received_before=deadline)
    settled = 0
    for code in codes:
        async with session_factory() as session:
            # Programme lock first, as the handler takes it: same order, no deadlock.
            await store.lock(session, [programme_lock_id(code)])
            stamp = given or utcnow()  # once the lock is ours, as the handler stamps
            rules = await store.load_programme(session, code)
            waiting = await store.waiting_in_programme(
                session, code, received_before=None if rules else deadline, limit=batch
            )
            for referral in waiting:
                if rules is not None:
                    done = await decide_waiting(session, outbox, referral, rules, now=stamp)
                else:
                    done = await _apply(session, outbox, referral, UNKNOWN_PROGRAMME, now=stamp)
                settled += done is not None
            await session.commit()
    return settled


# --- partners moving a referral on -------------------------------------------------------------


async def move(
    session: AsyncSession,
    outbox: Outbox,
    referral: ReferralRecord,
    transition: Transition,
    *,
    reason: str,
    now: datetime | None = None,
) -> ReferralRecord:
    """Withdraw or decline a referral the caller may move (checked by the caller, with
    the row locked). Only from ``received`` or ``accepted``; otherwise 409."""
    now = now or utcnow()
    if not transition.allowed(referral.status):
        raise conflict(
            f"A referral that is {referral.status.value} cannot become {transition.to.value}."
        )
    updated = await store.change_status(
        session,
        referral.id,
        outcome=Outcome(transition.to),
        entry=HistoryEntry(transition.to, now, reason=reason),
        updated_at=now,
        expected=transition.allowed_from,
    )
    if updated is None:  # the row is locked, so this cannot happen; never half-apply
        raise conflict("The referral changed meanwhile; fetch it and try again.")
    await _publish(session, outbox, updated.id, _events_for_change(updated, referral.status, now))
    await session.commit()
    log.info("referral moved", referral_id=str(updated.id), status=updated.status.value)
    return updated


# --- attachment (casework) ---------------------------------------------------------------------


class ReferralNotReady(Exception):
    """An attachment for a referral this service has not stored or decided: an
    out-of-order delivery. Raising sends the event round the retry queues."""


async def attachment_requested(
    session: AsyncSession,
    outbox: Outbox,
    payload: AttachmentRequested,
    *,
    now: datetime | None = None,
) -> AttachmentAnswered:
    """Casework asks to attach the referral before it answers the provider. Under the
    referral's row lock, as withdraw and decline take it, so whichever comes first
    wins and the other is refused: granted, the referral becomes ``attached`` here and
    now (its status_changed goes out before the answer)."""
    referral = await store.get_referral(session, payload.referral_id, for_update=True)
    now = now or utcnow()  # once the row is ours, as every change is stamped
    if referral is None or referral.status is Status.RECEIVED:
        raise ReferralNotReady(f"referral {payload.referral_id} is not decided here yet")
    granted = grants_attachment(
        referral.status,
        routed_to=referral.provider_id,
        attached_to=referral.participant_id,
        provider_id=payload.provider_id,
        participant_id=payload.participant_id,
    )
    if granted and referral.status is Status.ACCEPTED:
        # Its status_changed goes out first: webhooks and reporting hear of the
        # attachment no later than casework hears it granted.
        referral = await _attach(session, outbox, referral, payload, now=now)
    if not granted:
        log.info("attachment refused", referral_id=str(referral.id), status=referral.status.value)
    answer = AttachmentAnswered(
        referral_id=referral.id,
        participant_id=payload.participant_id,
        granted=granted,
        status=referral.status.value,
    )
    await _publish(session, outbox, referral.id, [answer])
    return answer


async def _attach(
    session: AsyncSession,
    outbox: Outbox,
    referral: ReferralRecord,
    attachment: AttachmentRequested | ParticipantAttached,
    *,
    now: datetime,
) -> ReferralRecord:
    """The referral (locked by the caller) becomes ``attached`` to the participant."""
    updated = await store.change_status(
        session,
        referral.id,
        outcome=Outcome(Status.ATTACHED),
        entry=HistoryEntry(Status.ATTACHED, now),
        updated_at=now,
        expected={referral.status},
        extra={"participant_id": attachment.participant_id, "attached_on": attachment.attached_on},
    )
    assert updated is not None  # locked by the caller
    await _publish(session, outbox, updated.id, _events_for_change(updated, referral.status, now))
    return updated


class AttachmentRefused(Exception):
    """participant.attached for a referral that was never routed (rejected, duplicate):
    no retry can fix it, so it ends in the dead-letter queue for a person to look at."""


async def participant_attached(
    session: AsyncSession,
    outbox: Outbox,
    payload: ParticipantAttached,
    *,
    now: datetime | None = None,
) -> ReferralRecord | None:
    """The provider attached the person (contract §3): the referral becomes ``attached``.

    Idempotent: a redelivery, or an attachment already recorded, changes nothing.
    """
    referral = await store.get_referral(session, payload.referral_id, for_update=True)
    now = now or utcnow()  # once the row is ours, as every change is stamped
    if referral is None or referral.status is Status.RECEIVED:
        raise ReferralNotReady(f"referral {payload.referral_id} is not decided here yet")
    if referral.status is Status.ATTACHED:
        if referral.participant_id != payload.participant_id:
            log.warning(
                "second participant attached to a referral; kept the first",
                referral_id=str(referral.id),
                participant_id=str(payload.participant_id),
            )
        return None
    if referral.status not in ATTACHABLE_STATUSES:
        raise AttachmentRefused(
            f"referral {referral.id} is {referral.status.value}; it was never routed"
        )
    if referral.provider_id != payload.provider_id:
        log.warning(
            "attachment by a provider the referral is not routed to",
            referral_id=str(referral.id),
            provider_id=str(payload.provider_id),
        )
    if referral.status is not Status.ACCEPTED:
        # Withdrawn or declined while the provider was attaching: the person is attached
        # (casework holds the participant and the attachment accrues), so say so.
        log.warning(
            "attachment crossed a withdrawal or decline; recording it",
            referral_id=str(referral.id),
            status=referral.status.value,
        )
    return await _attach(session, outbox, referral, payload, now=now)

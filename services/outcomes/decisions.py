"""Deciding claims and writing the ledger: the rules of :mod:`domain` applied to what
:mod:`store` knows, with the events that follow, inside the caller's transaction.

Callers hold the participant's lock (:func:`store.lock_participant`) for everything
here, so a claim and the facts it waits for are always seen together.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from services.outcomes import domain, store
from shared.events.outcomes import AccrualRecorded, ClaimDecided
from shared.logging import get_logger
from shared.outbox import Outbox

log = get_logger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


def claim_of(row: Row) -> domain.Claim:
    return domain.Claim(
        claim_id=row.id,
        participant_id=row.participant_id,
        provider_id=row.provider_id,
        type=domain.OutcomeType(row.type),
        achieved_on=row.achieved_on,
        employment_id=row.employment_id,
        evidence_kinds=tuple(domain.EvidenceKind(item["kind"]) for item in row.evidence),
    )


async def settle_participant(
    session: AsyncSession, outbox: Outbox, participant_id: uuid.UUID, *, now: datetime
) -> int:
    """Decide every submitted claim of the participant that can be decided now: its facts
    are all here, or its bounded wait is over. Returns how many were decided.

    A decision can be a fact for another claim (a validated job start for a sustained
    claim), so while some are decided and others still wait, it goes round again.
    """
    decided = 0
    waiting = await store.waiting_claims(session, participant_id)
    while waiting:
        still_waiting = [
            row for row in waiting if not await _try_decide(session, outbox, row, now=now)
        ]
        if len(still_waiting) == len(waiting):
            break
        decided += len(waiting) - len(still_waiting)
        waiting = still_waiting
    return decided


async def _try_decide(session: AsyncSession, outbox: Outbox, row: Row, *, now: datetime) -> bool:
    claim = claim_of(row)
    attachment, terms = await store.attachment_with_terms(session, claim.participant_id)
    attached = domain.attached_to_claimant(claim, attachment)

    owner = None
    if claim.employment_id is not None:
        owner = await store.episode_owner(session, claim.employment_id)
    job_start = None
    pending = False
    if attached and claim.type.sustained_weeks is not None:
        job_start = await store.validated_job_start(session, claim.participant_id)
        if job_start is None:
            pending = await store.job_start_pending(session, claim.participant_id)

    missing = domain.missing_facts(
        claim,
        attachment=attachment,
        programme_known=terms is not None,
        employment_known=owner is not None,
        employment_confirmed=row.employment_confirmed_at is not None,
        job_start_validated=job_start is not None,
        job_start_pending=pending,
    )
    if missing:
        expired = row.facts_deadline <= now
        if not (expired and domain.may_decide_on_what_is_known(missing)):
            return False

    if attached:
        episodes: tuple[domain.Episode, ...] = ()
        if claim.type is domain.OutcomeType.JOB_START or claim.type.sustained_weeks:
            episodes = tuple(await store.episodes_of(session, claim.participant_id))
        facts = domain.ClaimFacts(
            attachment=attachment,
            programme=terms,
            duplicate_of=row.duplicate_of,
            claimed_episode=next(
                (e for e in episodes if e.episode_id == claim.employment_id), None
            ),
            episodes=episodes,
            job_start=job_start,
            missing=missing,
        )
    else:
        # Someone else's participant (or none known): its facts stay out of the rules.
        facts = domain.ClaimFacts(
            attachment=attachment, duplicate_of=row.duplicate_of, missing=missing
        )
    evaluation = domain.evaluate_claim(claim, facts)
    decided_at = utcnow()
    # A claim is filed under its participant's programme, except a claim on someone
    # else's participant: that must not learn (or show) which programme it is in.
    programme = attachment.programme if attached and attachment is not None else None
    await store.record_decision(
        session,
        claim.claim_id,
        status=evaluation.status,
        reasons=[r.value for r in evaluation.reasons],
        programme=programme,
        decided_at=decided_at,
        decision=evaluation.record(decided_at),
    )
    internal_programme = attachment.programme if attachment is not None else None
    await _publish_decision(
        session,
        outbox,
        claim,
        programme=internal_programme,
        status=evaluation.status,
        reasons=[r.value for r in evaluation.reasons],
        decided_at=decided_at,
        decided_by="rules",
    )
    if evaluation.status is domain.ClaimStatus.VALIDATED:
        assert terms is not None and attachment is not None
        await accrue_claim(session, outbox, claim, attachment, terms)
    log.info(
        "claim decided",
        claim_id=str(claim.claim_id),
        status=evaluation.status.value,
        reasons=[r.value for r in evaluation.reasons],
        facts_complete=not missing,
    )
    return True


async def decide_review(
    session: AsyncSession,
    outbox: Outbox,
    row: Row,
    *,
    decision: domain.ReviewDecision,
    reason: str,
    partner_id: uuid.UUID,
) -> None:
    """The programme office's decision on a claim in review (caller checked the status)."""
    claim = claim_of(row)
    decided_at = utcnow()
    status = decision.status
    await store.record_decision(
        session,
        claim.claim_id,
        status=status,
        reasons=[],
        programme=row.programme,
        decided_at=decided_at,
        decision=domain.review_record(
            row.decision,
            decision=decision,
            reason=reason,
            partner_id=partner_id,
            decided_at=decided_at,
        ),
    )
    await _publish_decision(
        session,
        outbox,
        claim,
        programme=row.programme,
        status=status,
        reasons=[],
        decided_at=decided_at,
        decided_by="programme_office",
    )
    if status is domain.ClaimStatus.VALIDATED:
        attachment, terms = await store.attachment_with_terms(session, claim.participant_id)
        # A claim only reaches review once its participant and programme are known.
        assert attachment is not None and terms is not None
        await accrue_claim(session, outbox, claim, attachment, terms)
    log.info("claim reviewed", claim_id=str(claim.claim_id), status=status.value)
    # A validated (or rejected) job start may be what a sustained claim is waiting for.
    await settle_participant(session, outbox, claim.participant_id, now=decided_at)


async def _publish_decision(
    session: AsyncSession,
    outbox: Outbox,
    claim: domain.Claim,
    *,
    programme: str | None,
    status: domain.ClaimStatus,
    reasons: list[str],
    decided_at: datetime,
    decided_by: str,
) -> None:
    if programme is None:
        # Only a claim on a participant never heard of (rejected not_attached after the
        # wait): no programme to file it under, nothing for any consumer to count.
        log.info("claim decided outside any programme", claim_id=str(claim.claim_id))
        return
    await outbox.add(
        session,
        ClaimDecided(
            claim_id=claim.claim_id,
            participant_id=claim.participant_id,
            programme=programme,
            provider_id=claim.provider_id,
            type=claim.type.value,
            status=status.value,
            achieved_on=claim.achieved_on,
            reasons=reasons,
            decided_at=decided_at,
            decided_by=decided_by,
        ),
        aggregate_id=claim.claim_id,
    )


# --- ledger -----------------------------------------------------------------------------


async def accrue_claim(
    session: AsyncSession,
    outbox: Outbox,
    claim: domain.Claim,
    attachment: domain.Attachment,
    terms: domain.ProgrammeTerms,
) -> None:
    amount = terms.tariff_for(claim.type.value)
    if amount is None:
        log.warning(
            "validated claim has no tariff in its programme",
            claim_id=str(claim.claim_id),
            type=claim.type.value,
        )
        return
    await _append(
        session,
        outbox,
        store.LedgerLine(
            id=uuid.uuid4(),
            programme=attachment.programme,
            provider_id=claim.provider_id,
            participant_id=claim.participant_id,
            claim_id=claim.claim_id,
            kind=claim.type.value,
            amount_pence=amount,
            accrued_on=claim.achieved_on,
        ),
    )


async def accrue_attachment(
    session: AsyncSession,
    outbox: Outbox,
    attachment: domain.Attachment,
    terms: domain.ProgrammeTerms,
) -> None:
    amount = terms.tariff_for(domain.ATTACHMENT_KIND)
    if amount is None:
        return
    await _append(
        session,
        outbox,
        store.LedgerLine(
            id=uuid.uuid4(),
            programme=attachment.programme,
            provider_id=attachment.provider_id,
            participant_id=attachment.participant_id,
            claim_id=None,
            kind=domain.ATTACHMENT_KIND,
            amount_pence=amount,
            accrued_on=attachment.attached_on,
        ),
    )


async def _append(session: AsyncSession, outbox: Outbox, line: store.LedgerLine) -> None:
    if not await store.append_line(session, line):
        return  # accrued already (a redelivered event): never twice
    # Keyed by participant: a participant's lines leave in the order they were written.
    await outbox.add(
        session,
        AccrualRecorded(
            line_id=line.id,
            programme=line.programme,
            provider_id=line.provider_id,
            participant_id=line.participant_id,
            claim_id=line.claim_id,
            kind=line.kind,
            amount_pence=line.amount_pence,
            accrued_on=line.accrued_on,
        ),
        aggregate_id=line.participant_id,
    )

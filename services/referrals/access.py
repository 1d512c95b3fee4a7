"""Who may see and move which referral (contract §1 and the authorisation matrix).

Kinds are checked at the gateway and again here (403); ownership only here, and a
referral the caller may not see is 404 whatever it asked to do with it.
"""

from __future__ import annotations

from services.referrals.domain import SELF_SOURCE
from services.referrals.store import ReferralRecord, Visibility
from shared.caller import REFERRER_KINDS, Caller, PartnerKind
from shared.errors import Problem

# Who may post a referral: the referrers, and providers for people who came to them.
SUBMITTERS = frozenset({*REFERRER_KINDS, PartnerKind.PROVIDER})
# Who may withdraw: the partner that made the referral (a provider only its own).
WITHDRAWERS = SUBMITTERS


def source_of(caller: Caller) -> str:
    return SELF_SOURCE if caller.is_provider else caller.kind.value


def visibility(caller: Caller) -> Visibility:
    if caller.is_programme_office:
        return Visibility(everything=True)
    if caller.is_provider:
        # Routed to it, or posted by it as a self-referral.
        return Visibility(made_by=caller.partner_id, routed_to=caller.partner_id)
    if caller.is_referrer:
        return Visibility(made_by=caller.partner_id)
    return Visibility()


def can_see(caller: Caller, referral: ReferralRecord) -> bool:
    if caller.is_programme_office:
        return True
    if referral.referrer_id == caller.partner_id:
        return True
    return caller.is_provider and referral.provider_id == caller.partner_id


def check_may_withdraw(caller: Caller, referral: ReferralRecord) -> None:
    """Only the partner that made the referral withdraws it. Anyone else is refused as
    for a referral that is not theirs (404, as the authorisation matrix has it for
    ownership): the contract keeps 403 for what a partner's kind may never do, and a
    provider may withdraw, just only its own self-referrals."""
    if referral.referrer_id != caller.partner_id:
        raise Problem(404, "No referral made by you has this id.")


def check_may_decline(caller: Caller, referral: ReferralRecord) -> None:
    """Only the provider a referral is routed to declines it (404 otherwise, as above)."""
    if referral.provider_id != caller.partner_id:
        raise Problem(404, "No referral routed to you has this id.")

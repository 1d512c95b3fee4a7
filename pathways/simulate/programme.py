"""The simulated programme: Greater Manchester's Working Well Expansion, as the 4th annual
evaluation report (SQW, 2018) describes it, and the partners that take part.

Figures quoted from the report are marked with its paragraph or table; the rest are
plausible choices the report leaves open (tariff amounts, for instance, are not
published: the contract's example tariff is used).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PEOPLE = 5000
DEFAULT_SEED = 2018  # the year of the evaluation report the story follows

INGEUS = "provider:ingeus"
GROWTH = "provider:growth"
OFFICE = "office"
PROBATION = "probation"

# Ingeus in seven local authorities, The Growth Company in three (¶1.3, ¶1.5).
PROVIDER_AREAS: dict[str, tuple[str, ...]] = {
    INGEUS: ("Bolton", "Bury", "Oldham", "Rochdale", "Stockport", "Tameside", "Wigan"),
    GROWTH: ("Manchester", "Salford", "Trafford"),
}
PROVIDER_OF: dict[str, str] = {
    area: provider for provider, areas in PROVIDER_AREAS.items() for area in areas
}
LOCAL_AUTHORITIES: tuple[str, ...] = tuple(sorted(PROVIDER_OF))

# Share of referrals by area: Manchester 20% and Bolton 15% of the Expansion (¶3.14),
# Wigan 9% (¶3.6); the rest spread to sum to one.
AREA_SHARE: dict[str, float] = {
    "Manchester": 0.20,
    "Bolton": 0.15,
    "Rochdale": 0.10,
    "Salford": 0.10,
    "Wigan": 0.09,
    "Oldham": 0.09,
    "Stockport": 0.08,
    "Tameside": 0.08,
    "Bury": 0.06,
    "Trafford": 0.05,
}
# People living just over the border, referred by the nearest Jobcentre: outside_area.
OUTSIDE_AREAS: dict[str, str] = {
    "Warrington": "Wigan",
    "Blackburn with Darwen": "Bolton",
    "High Peak": "Stockport",
    "Calderdale": "Rochdale",
}
OUTSIDE_AREA_SHARE = 0.015

# Drug and alcohol treatment services, each covering several areas.
TREATMENT_AREAS: dict[str, tuple[str, ...]] = {
    "treatment:city": ("Manchester", "Salford"),
    "treatment:north": ("Bolton", "Bury", "Oldham", "Rochdale", "Wigan"),
    "treatment:south": ("Stockport", "Tameside", "Trafford"),
}
TREATMENT_OF: dict[str, str] = {
    area: service for service, areas in TREATMENT_AREAS.items() for area in areas
}


def jcp(area: str) -> str:
    return f"jcp:{area}"


@dataclass(frozen=True)
class PartnerSpec:
    handle: str
    name: str
    kind: str


def partner_specs() -> list[PartnerSpec]:
    """Every partner of the simulated programme, in the order they are registered."""
    specs = [
        PartnerSpec(OFFICE, "Working Well Programme Office (GMCA)", "programme_office"),
        PartnerSpec(INGEUS, "Ingeus", "provider"),
        PartnerSpec(GROWTH, "The Growth Company", "provider"),
        PartnerSpec(PROBATION, "Greater Manchester Probation Service", "probation"),
        PartnerSpec("treatment:city", "Manchester and Salford Recovery Service", "treatment"),
        PartnerSpec("treatment:north", "North Greater Manchester Recovery Service", "treatment"),
        PartnerSpec("treatment:south", "South Greater Manchester Recovery Service", "treatment"),
    ]
    # One Jobcentre Plus district per area, as the contract's "Wigan Jobcentre" example.
    specs += [PartnerSpec(jcp(a), f"{a} Jobcentre Plus", "jcp") for a in LOCAL_AUTHORITIES]
    return specs


SUPPORT_WEEKS = 104
MIN_JOB_HOURS = 16
SUSTAINMENT_WEEKS = 50
TARIFF: dict[str, int] = {
    "attachment": 30000,
    "job_start": 120000,
    "sustained_13": 40000,
    "sustained_26": 40000,
    "sustained_50": 60000,
    "qualification": 15000,
    "volunteering_start": 5000,
    "education_start": 5000,
}
# The Expansion took ESA, JSA, Income Support and Universal Credit claimants (¶1.5).
ELIGIBLE_BENEFITS: tuple[str, ...] = ("ESA", "JSA", "IS", "UC")
MIN_AGE, MAX_AGE = 18, 66


def programme_definition(code: str, provider_ids: dict[str, str]) -> dict:
    """The body of ``POST /admin/programmes`` (contract §1)."""
    return {
        "code": code,
        "name": "Working Well Expansion (simulated)",
        "eligible_benefits": list(ELIGIBLE_BENEFITS),
        "min_age": MIN_AGE,
        "max_age": MAX_AGE,
        "support_weeks": SUPPORT_WEEKS,
        "min_job_hours": MIN_JOB_HOURS,
        "sustainment_weeks": SUSTAINMENT_WEEKS,
        "providers": [
            {"partner_id": provider_ids[handle], "local_authorities": list(areas)}
            for handle, areas in PROVIDER_AREAS.items()
        ],
        "tariff": dict(TARIFF),
        # The report's targets: 20% into work, 75% of starters sustaining (¶1.3).
        "targets": {"job_start_rate": 0.20, "sustainment_rate": 0.75},
    }

"""The reporting service's rules: plain functions and dataclasses, no I/O.

* :mod:`.calendar` — business-date arithmetic (calendar months clamped to month end,
  quarters).
* :mod:`.figures` — exact rates and means, and small-number suppression.
* :mod:`.facts` — what the projections hold about each referral and participant, and
  how one event's payload becomes a fact row.
* :mod:`.contributions` — what each referral and participant adds to the daily rollups
  the reports are summed from.
* :mod:`.reports` — the report rows themselves, assembled from rollup sums.
"""

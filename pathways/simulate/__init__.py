"""``pathways simulate`` / ``pathways demo``: a Working Well programme played through the
partner API, its report figures checked against its own story (see docs/demo.md).

The story (pure, deterministic for ``people``, ``seed``, ``as_of``):
  :mod:`story` builds it from :mod:`people` (synthetic people), :mod:`lives` (barriers,
  jobs, exits, sessions), :mod:`claims` (what providers claim) and :mod:`syncs` (the
  CRMs' bulk syncs) into :mod:`records`; :mod:`judge` applies the claim rules;
  :mod:`rules` is the contract's arithmetic; :mod:`expected` the figures it implies.
Playing it: :mod:`runner` (with :mod:`referring`, :mod:`casework`, :mod:`claiming`,
  :mod:`base`) through :mod:`client`; :mod:`compare` and :mod:`display` read the reports
  back. Commands: :mod:`main`, :mod:`local` (starting the platform), :mod:`cli`,
  :mod:`measure` (timings).
"""

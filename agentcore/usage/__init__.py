"""Model usage: the metered seam every model call for a person goes through (``meter``), and
the sums, cache shares and cost estimates shown to people and operators (``report``)."""

"""Programme performance, cohort curves and barriers, from events."""

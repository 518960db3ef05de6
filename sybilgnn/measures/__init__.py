"""Measures that every stage shares: metrics at the population's prevalence with intervals,
the audit's prevalence estimate, paired comparisons of two models on the same rows.

They sit below training (which reports them), tuning (which compares trials with them),
the gate and the leave-one-campaign-out harness, so none of those imports upwards.
"""

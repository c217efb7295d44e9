"""Randomization: allocation of subjects to arms (``service``) and ``can_see_arm``, the one blinding check.

Every page, export, report and log view that could show an arm asks ``can_see_arm`` first
(DESIGN.md invariant 8); nothing else reads ``Subject.arm`` for display.
"""
from ecrf.randomization.blinding import arm_label, can_see_arm, masking

__all__ = ["arm_label", "can_see_arm", "masking"]

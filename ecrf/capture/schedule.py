"""The visit schedule of one subject: target dates from day 0, windows, due and overdue visits.

Day 0 is the date of the anchor visit (the scheduled visit with ``"day": 0``, else the first
visit). Each visit's target is day 0 + its day; its window is [target - window_before,
target + window_after]. A visit is *due* while today is in its window and it has no date, *overdue*
once the window has passed without one, and *out of window* when its date falls outside.
"""
import dataclasses
import datetime as dt


@dataclasses.dataclass(frozen=True)
class VisitSchedule:
    visit: str
    target: dt.date | None
    earliest: dt.date | None
    latest: dt.date | None
    date: dt.date | None

    def state(self, today):
        if self.date is not None:
            return "done"
        if self.latest is None:
            return "unscheduled" if self.target is None else "upcoming"
        if today > self.latest:
            return "overdue"
        if self.earliest <= today:
            return "due"
        return "upcoming"

    @property
    def out_of_window(self):
        return (self.date is not None and self.earliest is not None
                and not self.earliest <= self.date <= self.latest)


def applies(visit, arm):
    """Whether a subject allocated to ``arm`` (None: not yet) has the visit at all: a visit with
    ``arms`` belongs only to subjects allocated to one of them."""
    return not visit.arms or arm in visit.arms


def anchor_visit(spec):
    return next((v for v in spec.visits if v.day == 0), spec.visits[0])


def schedule(spec, dates, arm=None):
    """VisitSchedule per scheduled visit the subject has, from ``dates`` ({visit key: date}).

    ``arm`` is the subject's allocated arm: visits restricted to other arms are left out, and before
    allocation (``arm`` None) a restricted visit has no target, so it is neither due nor overdue.
    """
    anchor = anchor_visit(spec)
    day0 = dates.get(anchor.id)
    if day0 is not None:
        day0 = day0 - dt.timedelta(days=anchor.day)
    rows = []
    for visit in spec.visits:
        if visit.arms and arm is not None and arm not in visit.arms:
            continue
        if day0 is None or (visit.arms and arm is None):
            rows.append(VisitSchedule(visit.id, None, None, None, dates.get(visit.id)))
            continue
        target = day0 + dt.timedelta(days=visit.day)
        rows.append(VisitSchedule(visit.id, target, target - dt.timedelta(days=visit.window_before),
                                  target + dt.timedelta(days=visit.window_after), dates.get(visit.id)))
    return rows


def window_warning(spec, visit_key, dates, arm=None):
    """The soft-check message for a visit date outside its window, or None."""
    for row in schedule(spec, dates, arm):
        if row.visit == visit_key and row.out_of_window:
            return (f"visit date {row.date.isoformat()} is outside the window "
                    f"{row.earliest.isoformat()} to {row.latest.isoformat()}")
    return None

"""Who is acting: every service takes an Actor, and every audit event it writes names that actor."""
import dataclasses
import getpass

from audit import Event, RequestContext


@dataclasses.dataclass(frozen=True)
class Actor:
    """A user (or the system) acting through a channel: page, api, cli, import or system."""

    user_id: int | None
    name: str
    role: str | None = None
    context: RequestContext = RequestContext()

    @classmethod
    def cli(cls):
        """The operator at the command line, named by their operating-system account."""
        try:
            who = getpass.getuser()
        except (KeyError, OSError):
            who = "unknown"
        return cls(None, f"cli:{who}", None, RequestContext(channel="cli"))

    @classmethod
    def system(cls, name="system"):
        return cls(None, name, None, RequestContext(channel="system"))

    @classmethod
    def for_user(cls, user, context, role=None):
        return cls(user.id, user.username, role, context)

    def with_role(self, role):
        return dataclasses.replace(self, role=role)

    def event(self, action, **fields):
        """An audit Event by this actor."""
        return Event(action=action, actor_id=self.user_id, actor_name=self.name,
                     actor_role=self.role, context=self.context, **fields)

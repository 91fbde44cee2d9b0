"""A person decides an approval: the one function the console and `deskgate approvals` share.

    1. role       only an admin or an approver decides (`Person.require`)
    2. requester  nobody decides a call their own token requested (`People.requested_by`)
    3. decide     `Approvals.decide`: pending, not expired, one vote per person, quorum counts people

The approver's name in the approval is the person's account name, so the two-person rule counts
distinct console accounts, and nobody can type someone else's name.
"""

from __future__ import annotations

from deskgate.server.errors import DeniedError
from deskgate.server.people.accounts import People, Person
from deskgate.server.policy.approvals import Approval, Approvals


def decide(people: People, approvals: Approvals, person: Person, approval_id: str, *, approve: bool, reason: str,
           now: int) -> Approval:
    person.require("approvals.decide")                                                    # 1
    pending = approvals.get_sync(approval_id)
    if people.requested_by(person.name, sub=pending.sub, sid=pending.sid):                # 2
        raise DeniedError("nobody decides their own request: this call came from your token", code="approval_self")
    return approvals.decide_sync(approval_id, person.name, approve, reason, now=now)    # 3

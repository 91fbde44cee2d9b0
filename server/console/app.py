"""The web console at /console/: server-rendered pages over the same runtime the MCP endpoint uses.

Every page needs a logged-in person (`server/people/`); every POST needs the session's CSRF token;
every answer carries the security headers (`server/console/security.py`). What a person may do is
their role's (`PERMISSIONS`), checked by the operation itself, not by hiding a button. Every action
- a login, a failed login, a logout, a decision, a refused decision - is appended to the audit log
with the person (`kind: admin`, `channel: console`) before the page answers.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio.to_thread
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from deskgate.config import packaged
from deskgate.scopes.tokens import TOKEN_ID
from deskgate.server.audit.reader import export_jsonl
from deskgate.server.audit.verify import Report
from deskgate.server.console import auditing, qa, scorecard
from deskgate.server.console.security import LOGIN_COOKIE, Cookies, SecurityHeaders, same_token
from deskgate.server.console.words import ApprovalWords, approval_in_words, handoff_in_words, when
from deskgate.server.errors import (
    AuthenticationError,
    DeniedError,
    DeskgateError,
    DomainError,
    InvalidArguments,
    NotFound,
)
from deskgate.server.manifest import lock
from deskgate.server.manifest.diff import diff
from deskgate.server.people.accounts import ConsoleSession, open_people
from deskgate.server.people.decisions import decide
from deskgate.server.redaction.redactor import redact_text
from deskgate.server.runtime import Runtime
from deskgate.server.settings import parse_duration

_STATUS = {DeniedError: 403, NotFound: 404}


class _LoginRequired(Exception):
    pass


class Console:
    def __init__(self, runtime: Runtime, *, public_url: str, clock: Callable[[], float] = time.time) -> None:
        self.runtime = runtime
        self.people = open_people(runtime.state_db, runtime.settings, runtime.paths)
        self.reviews = qa.Reviews(runtime.state_db)
        self.reviews.upgrade()
        self.cookies = Cookies(public_url=public_url, force_secure=runtime.settings.console.secure_cookies)
        self.clock = clock
        self.templates = Environment(loader=PackageLoader("deskgate.server.console", "templates"),
                                     autoescape=select_autoescape(default=True, default_for_string=True))

    def app(self) -> ASGIApp:
        routes = [
            Route("/", self.home),
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/approvals", self.approvals, methods=["GET"]),
            Route("/approvals/{approval_id}", self.decide, methods=["POST"]),
            Route("/escalations", self.escalations, methods=["GET"]),
            Route("/escalations/{handoff_id}", self.work, methods=["POST"]),
            Route("/sessions", self.sessions, methods=["GET"]),
            Route("/sessions", self.issue, methods=["POST"]),
            Route("/sessions/{jti}/revoke", self.revoke, methods=["POST"]),
            Route("/audit", self.audit_page, methods=["GET"]),
            Route("/audit/verify", self.audit_verify, methods=["POST"]),
            Route("/audit/export", self.audit_export, methods=["GET"]),
            Route("/qa", self.qa_page, methods=["GET"]),
            Route("/qa/{request_id}", self.qa_review, methods=["POST"]),
            Route("/manifest", self.manifest_page, methods=["GET"]),
            Route("/manifest/pin", self.pin, methods=["POST"]),
            Route("/breakers", self.breakers, methods=["GET"]),
            Route("/breakers/{name}/reset", self.reset_breaker, methods=["POST"]),
            Route("/scorecard", self.scorecard_page, methods=["GET"]),
            Route("/api/scorecard", self.scorecard_json, methods=["GET"]),
            Mount("/static", StaticFiles(packages=[("deskgate.server.console", "static")]), name="static"),
        ]
        return SecurityHeaders(Starlette(routes=routes, exception_handlers={_LoginRequired: self._to_login}))

    # -- plumbing -----------------------------------------------------------------------------------

    def now(self) -> int:
        return int(self.clock())

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.templates.get_template(template).render(root=request.scope.get("root_path", ""), **context)
        return HTMLResponse(html, status_code=status)

    async def audit(self, action: str, person: str, **fields: Any) -> None:
        await self.runtime.audit.append({"kind": "admin", "action": action, "actor": person, "channel": "console",
                                         **fields})

    async def session(self, request: Request) -> ConsoleSession:
        secret = self.cookies.session_of(request)
        if secret is None:
            raise _LoginRequired
        try:
            return await anyio.to_thread.run_sync(lambda: self.people.session(secret, now=self.now()))
        except AuthenticationError:
            raise _LoginRequired from None

    async def posted(self, request: Request) -> tuple[ConsoleSession, dict[str, Any]]:
        """The session and form of a POST whose CSRF token is the session's; else 403 (nothing done)."""
        session = await self.session(request)
        form = dict(await request.form())
        if not same_token(session.csrf, form.get("csrf")):
            raise HTTPException(403, "the form's CSRF token is missing or wrong; reload the page")
        return session, form

    async def _to_login(self, request: Request, _: Exception) -> Response:
        response = RedirectResponse(f"{request.scope.get('root_path', '')}/login", status_code=303)
        if self.cookies.session_of(request) is not None:  # an ended session's cookie goes too
            self.cookies.clear(response, request, self.cookies.session_name(request))
        return response

    def _page(self, request: Request, session: ConsoleSession, template: str, status: int = 200,
              **context: Any) -> HTMLResponse:
        return self.render(request, template, status, person=session.person, csrf=session.csrf, **context)

    # -- login and logout ---------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        await self.session(request)
        return RedirectResponse(f"{request.scope.get('root_path', '')}/approvals", status_code=303)

    async def login_form(self, request: Request, *, error: str | None = None, status: int = 200) -> Response:
        token = _random()
        response = self.render(request, "login.html", status, csrf=token, error=error)
        self.cookies.set(response, request, LOGIN_COOKIE, token, max_age=900)
        return response

    async def login(self, request: Request) -> Response:
        form = dict(await request.form())
        if not same_token(request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
            raise HTTPException(403, "the login form's CSRF token is missing or wrong; reload the page")
        name, password, code = (str(form.get(k, "")) for k in ("name", "password", "code"))
        address = request.client.host if request.client else "unknown"
        try:
            secret, session = await anyio.to_thread.run_sync(
                lambda: self.people.login(name, password, code, address=address, now=self.now()))
        except AuthenticationError as exc:
            await self.audit("person.login_failed", name[:64], code=exc.code, address=address)
            return await self.login_form(request, error=exc.reason, status=401)
        # A new session id every login; a session cookie the browser brought is ended, never reused.
        old = self.cookies.session_of(request)
        if old is not None:
            await anyio.to_thread.run_sync(self.people.logout, old)
        await self.audit("person.login", session.person.name, address=address)
        response = RedirectResponse(f"{request.scope.get('root_path', '')}/approvals", status_code=303)
        self.cookies.set(response, request, self.cookies.session_name(request), secret,
                         max_age=session.expires_at - session.created_at)
        self.cookies.clear(response, request, LOGIN_COOKIE)
        return response

    async def logout(self, request: Request) -> Response:
        session, _ = await self.posted(request)
        secret = self.cookies.session_of(request)
        if secret is not None:
            await anyio.to_thread.run_sync(self.people.logout, secret)
        await self.audit("person.logout", session.person.name)
        response = RedirectResponse(f"{request.scope.get('root_path', '')}/login", status_code=303)
        self.cookies.clear(response, request, self.cookies.session_name(request))
        return response

    # -- approvals ----------------------------------------------------------------------------------

    async def approvals(self, request: Request, *, error: str | None = None, status: int = 200) -> Response:
        session = await self.session(request)
        pending, decided = await self._approval_lists()
        return self._page(request, session, "approvals.html", status, pending=pending, decided=decided, error=error,
                          may_decide=session.person.may("approvals.decide"), done=request.query_params.get("done"))

    async def _approval_lists(self) -> tuple[list[ApprovalWords], list[ApprovalWords]]:
        now = self.now()
        runtime = self.runtime
        every = await anyio.to_thread.run_sync(lambda: runtime.approvals.list_sync(now=now, everything=True))
        tickets = await anyio.to_thread.run_sync(lambda: {
            t.sid: t.ticket for t in runtime.state.tokens.list_sync(include_expired=True, now=now) if t.ticket})

        async def words(approval: Any) -> ApprovalWords:
            return await approval_in_words(approval, catalogue=runtime.catalogue, backend=runtime.backend,
                                           ticket_of_session=tickets.get(approval.sid), now=now)

        pending = [await words(a) for a in every if a.state_at(now) == "pending"]
        recent = [a for a in every if a.state_at(now) != "pending" and (a.decided_at or a.requested_at) > now - 86400]
        decided = [await words(a) for a in sorted(recent, key=lambda a: -(a.decided_at or a.requested_at))[:50]]
        return pending, decided

    async def decide(self, request: Request) -> Response:
        session, form = await self.posted(request)
        approval_id = request.path_params["approval_id"]
        action = form.get("action")
        if action not in ("approve", "deny"):
            raise HTTPException(400, "action is approve or deny")
        approve, reason = action == "approve", str(form.get("reason", ""))
        person = session.person
        try:
            decided = await anyio.to_thread.run_sync(lambda: decide(
                self.people, self.runtime.approvals, person, approval_id, approve=approve, reason=reason,
                now=self.now()))
        except DeskgateError as exc:
            await self.audit("approval.refused", person.name, approval_id=approval_id[:32], attempted=action,
                             code=exc.code)
            status = next((s for kind, s in _STATUS.items() if isinstance(exc, kind)), 400)
            return await self.approvals(request, error=exc.reason, status=status)
        await self.audit(f"approval.{action}", person.name, principal=person.name, approval_id=decided.id,
                         tool=decided.tool, args_digest=decided.args_digest, requested_by=decided.sub,
                         sid=decided.sid, state=decided.state_at(self.now()), reason=decided.decision_reason)
        return RedirectResponse(f"{request.scope.get('root_path', '')}/approvals?done={decided.id}", status_code=303)


    # -- escalations -----------------------------------------------------------------------------------

    async def escalations(self, request: Request, *, error: str | None = None, status: int = 200) -> Response:
        session = await self.session(request)
        try:
            handoffs = await self.runtime.backend.list_handoffs(open_only=False)
        except DomainError as exc:  # a ticket system whose people work hand-offs in it
            handoffs, error = [], error or exc.reason
        shown = [await handoff_in_words(h, self.runtime.backend) for h in handoffs]
        return self._page(request, session, "escalations.html", status, error=error,
                          open=[h for h in shown if h.status != "closed"],
                          closed=[h for h in shown if h.status == "closed"][:50],
                          may_work=session.person.may("escalations.work"), done=request.query_params.get("done"))

    async def work(self, request: Request) -> Response:
        """Take a hand-off, or close it with the reply the agent reads (`get_action_status`)."""
        session, form = await self.posted(request)
        person, handoff_id = session.person, request.path_params["handoff_id"]
        action = form.get("action")
        reply = redact_text(str(form.get("reply", "")).strip())
        try:
            person.require("escalations.work")
            if action not in ("take", "close"):
                raise InvalidArguments("action is take or close")
            if action == "close" and not 0 < len(reply) <= 1000:
                raise InvalidArguments("closing needs a reply for the agent (at most 1000 characters)",
                                       code="reply_required")
            worked = await self.runtime.backend.work_handoff(
                handoff_id, "taken" if action == "take" else "closed", person=person.name,
                resolution=reply if action == "close" else None)
        except DeskgateError as exc:
            await self.audit("handoff.refused", person.name, handoff_id=handoff_id[:32], attempted=str(action)[:8],
                             code=exc.code)
            status = next((s for kind, s in _STATUS.items() if isinstance(exc, kind)), 400)
            return await self.escalations(request, error=exc.reason, status=status)
        await self.audit(f"handoff.{action}", person.name, handoff_id=worked.handoff_id, state=worked.status,
                         reply=worked.resolution if action == "close" else None)
        return RedirectResponse(f"{request.scope.get('root_path', '')}/escalations?done={worked.handoff_id}",
                                status_code=303)

    # -- sessions (agent tokens) ----------------------------------------------------------------------

    async def sessions(self, request: Request, *, issued: str | None = None, error: str | None = None,
                       status: int = 200) -> Response:
        session = await self.session(request)
        now = self.now()
        tokens = await anyio.to_thread.run_sync(
            lambda: self.runtime.state.tokens.list_sync(include_expired=False, now=now))
        return self._page(request, session, "sessions.html", status, tokens=tokens[::-1], issued=issued,
                          error=error, roles=sorted(self.runtime.roles.grants()),
                          may_manage=session.person.may("tokens.manage"), when=when,
                          default_ttl=self.runtime.settings.tokens.default_ttl)

    async def issue(self, request: Request) -> Response:
        """Issue an agent session token; it is shown once, on this answer only (never stored, never logged)."""
        session, form = await self.posted(request)
        person, runtime = session.person, self.runtime
        text = {k: str(form.get(k, "")).strip() for k in ("sub", "role", "ttl", "customer", "ticket", "max_refund")}
        try:
            person.require("tokens.manage")
            if text["role"] not in runtime.roles.grants():
                raise InvalidArguments("choose one of the roles", code="invalid_role")
            try:
                ttl = parse_duration(text["ttl"] or runtime.settings.tokens.default_ttl)
            except ValueError:
                raise InvalidArguments("a lifetime is like 30m, 8h or 90s", code="invalid_ttl") from None
            bound = runtime.manifest["manifest_hash"] if runtime.settings.tokens.bind_manifest else None
            token, record = await anyio.to_thread.run_sync(lambda: runtime.issuer.issue(
                text["sub"], runtime.roles.scopes_of(text["role"]), ttl, customer=text["customer"] or None,
                ticket=text["ticket"] or None, max_refund=text["max_refund"] or None, manifest_hash=bound))
            await anyio.to_thread.run_sync(lambda: self.people.link_token(person.name, record.sid, now=self.now()))
        except DeskgateError as exc:
            status = next((s for kind, s in _STATUS.items() if isinstance(exc, kind)), 400)
            return await self.sessions(request, error=exc.reason, status=status)
        await self.audit("token.issued", person.name, jti=record.jti, sub=record.sub, sid=record.sid,
                         scopes=record.scopes, kid=record.kid, expires_at=record.expires_at, customer=record.customer,
                         ticket=record.ticket, max_refund=record.max_refund, role=text["role"])
        return await self.sessions(request, issued=token)

    async def revoke(self, request: Request) -> Response:
        session, form = await self.posted(request)
        person, jti = session.person, request.path_params["jti"]
        reason = str(form.get("reason", "")).strip() or f"revoked by {person.name} in the console"
        try:
            person.require("tokens.manage")
            if not TOKEN_ID.match(jti) or not reason.isprintable() or len(reason) > 200:
                raise InvalidArguments("not a token id, or a reason that is not 1-200 printable characters")
            await anyio.to_thread.run_sync(
                lambda: self.runtime.state.tokens.revoke_sync("jti", jti, reason, self.now()))
        except DeskgateError as exc:
            status = next((s for kind, s in _STATUS.items() if isinstance(exc, kind)), 400)
            return await self.sessions(request, error=exc.reason, status=status)
        await self.audit("token.revoked", person.name, target="jti", value=jti, reason=reason)
        return RedirectResponse(f"{request.scope.get('root_path', '')}/sessions", status_code=303)

    # -- audit --------------------------------------------------------------------------------------

    async def audit_page(self, request: Request, *, report: Report | None = None) -> Response:
        session = await self.session(request)
        query = auditing.Search.of(request.query_params)
        try:
            found = await anyio.to_thread.run_sync(lambda: auditing.search(self.runtime, query))
            error = None
        except DeskgateError as exc:
            found, error = [], exc.reason
        return self._page(request, session, "audit.html", 400 if error else 200, query=query, found=found,
                          error=error, report=report, when_of=auditing.when_of, shown=auditing.SHOWN,
                          export=urlencode(query.params()))

    async def audit_verify(self, request: Request) -> Response:
        session, _ = await self.posted(request)
        report = await anyio.to_thread.run_sync(lambda: auditing.check(self.runtime))
        if report.ok:
            await self.audit("audit.verified", session.person.name, records=report.records, last_seq=report.last_seq)
        else:
            await self.audit("audit.verify_failed", session.person.name, problem=str(report.problems[0])[:300],
                             good_records=report.records)
        return await self.audit_page(request, report=report)

    async def audit_export(self, request: Request) -> Response:
        """The matching records as JSON Lines in their stored canonical form (a SIEM can re-check the hashes)."""
        session = await self.session(request)
        query = auditing.Search.of(request.query_params)
        try:
            found = await anyio.to_thread.run_sync(lambda: auditing.search(self.runtime, query, limit=None))
        except DeskgateError as exc:
            raise HTTPException(400, exc.reason) from None
        await self.audit("audit.exported", session.person.name, filters=query.params(), records=len(found))
        body = "".join(f"{line}\n" for line in export_jsonl(reversed(found)))
        return Response(body, media_type="application/x-ndjson",
                        headers={"Content-Disposition": 'attachment; filename="deskgate-audit.jsonl"'})

    # -- QA sampling ----------------------------------------------------------------------------------

    def _week(self, request: Request) -> str:
        week = str(request.query_params.get("week") or qa.this_week(self.now()))
        if not re.fullmatch(r"[0-9]{4}-W[0-9]{2}", week):
            raise HTTPException(400, "a week is like 2026-W50")
        return week

    async def qa_page(self, request: Request, *, error: str | None = None, status: int = 200) -> Response:
        session = await self.session(request)
        week = self._week(request)
        sampled = await anyio.to_thread.run_sync(lambda: qa.sample(auditing.records(self.runtime), week))
        reviews = await anyio.to_thread.run_sync(self.reviews.of_week, week)
        return self._page(request, session, "qa.html", status, error=error, week=week, sampled=sampled,
                          reviews=reviews, when_of=auditing.when_of, may_review=session.person.may("qa.review"),
                          size=qa.SAMPLE_SIZE)

    async def qa_review(self, request: Request) -> Response:
        session, form = await self.posted(request)
        person, request_id, week = session.person, request.path_params["request_id"], self._week(request)
        note = redact_text(str(form.get("note", "")).strip())[:500]
        try:
            person.require("qa.review")
            sampled = await anyio.to_thread.run_sync(lambda: qa.sample(auditing.records(self.runtime), week))
            if request_id not in {r["request_id"] for r in sampled}:
                raise NotFound("this action is not in the week's sample", code="qa_not_sampled")
            review = await anyio.to_thread.run_sync(lambda: self.reviews.record(
                request_id, week, str(form.get("verdict", "")), note, person.name, now=self.now()))
        except DeskgateError as exc:
            status = next((s for kind, s in _STATUS.items() if isinstance(exc, kind)), 400)
            return await self.qa_page(request, error=exc.reason, status=status)
        await self.audit("qa.reviewed", person.name, request_id=request_id, week=week, verdict=review.verdict,
                         note=review.note or None)
        return RedirectResponse(f"{request.scope.get('root_path', '')}/qa?week={week}", status_code=303)

    # -- manifest and breakers ----------------------------------------------------------------------

    def _lock_target(self) -> Path:
        paths = self.runtime.paths
        return paths.manifest_lock if paths.manifest_lock.exists() else packaged(lock.RELEASE_LOCK)

    async def manifest_page(self, request: Request, *, error: str | None = None, status: int = 200) -> Response:
        session = await self.session(request)
        target = self._lock_target()
        pinned = lock.load(target) if target.exists() else None
        changes = diff(pinned, self.runtime.manifest) if pinned is not None else []
        return self._page(request, session, "manifest.html", status, error=error, target=target,
                          served=self.runtime.manifest["manifest_hash"],
                          pinned=pinned["manifest_hash"] if pinned else None, changes=changes,
                          may_pin=session.person.may("manifest.pin"), tools=len(self.runtime.manifest["tools"]))

    async def pin(self, request: Request) -> Response:
        """Pin the served manifest in this deployment's lock ($DESKGATE_HOME/manifest.lock)."""
        session, _ = await self.posted(request)
        try:
            session.person.require("manifest.pin")
        except DeskgateError as exc:
            return await self.manifest_page(request, error=exc.reason, status=403)
        target = self.runtime.paths.manifest_lock
        pinned = await anyio.to_thread.run_sync(lambda: lock.pin(self.runtime.manifest, target))
        await self.audit("manifest.pinned", session.person.name, manifest_hash=pinned, lock=str(target))
        return RedirectResponse(f"{request.scope.get('root_path', '')}/manifest", status_code=303)

    async def breakers(self, request: Request, *, error: str | None = None, status: int = 200) -> Response:
        session = await self.session(request)
        tripped = await anyio.to_thread.run_sync(self.runtime.state.breakers.list_sync)
        return self._page(request, session, "breakers.html", status, error=error, tripped=tripped, when=when,
                          may_reset=session.person.may("breakers.reset"))

    async def reset_breaker(self, request: Request) -> Response:
        session, _ = await self.posted(request)
        name = request.path_params["name"]
        try:
            session.person.require("breakers.reset")
            tripped = {row[0]: row for row in await anyio.to_thread.run_sync(self.runtime.state.breakers.list_sync)}
            if name not in tripped:
                raise NotFound("this breaker is not tripped", code="breaker_not_tripped")
            if not await anyio.to_thread.run_sync(partial(self.runtime.state.breakers.reset_sync, name,
                                                          by=session.person.name, now=self.now())):
                raise NotFound("this breaker is not tripped", code="breaker_not_tripped")
        except DeskgateError as exc:
            status = next((s for kind, s in _STATUS.items() if isinstance(exc, kind)), 400)
            return await self.breakers(request, error=exc.reason, status=status)
        await self.audit("breaker.reset", session.person.name, breaker=name, principal=session.person.name,
                         tripped_at=tripped[name][1], trip_reason=tripped[name][2], at=self.now())
        return RedirectResponse(f"{request.scope.get('root_path', '')}/breakers", status_code=303)

    # -- scorecard ----------------------------------------------------------------------------------

    async def _scorecard(self) -> dict[str, Any]:
        runtime = self.runtime

        def compute() -> dict[str, Any]:
            records = auditing.records(runtime)
            approvals = runtime.approvals.list_sync(now=self.now(), everything=True)
            return scorecard.build(records, approvals, qa=self.reviews.totals()).as_json()

        return await anyio.to_thread.run_sync(compute)

    async def scorecard_page(self, request: Request) -> Response:
        session = await self.session(request)
        data = await self._scorecard()
        return self._page(request, session, "scorecard.html", data=data, charts=scorecard.charts(data))

    async def scorecard_json(self, request: Request) -> Response:
        """The scorecard page's data, for dashboards: the same numbers, as JSON."""
        await self.session(request)
        return JSONResponse(await self._scorecard())


def _random() -> str:
    return secrets.token_urlsafe(32)


def build_console(runtime: Runtime, *, public_url: str) -> ASGIApp:
    return Console(runtime, public_url=public_url).app()

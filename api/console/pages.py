"""The console's pages: thin views over the same engine calls as the API, with the session's
Principal, so scoping, masking, reveal rules, audit entries and task moves are the API's."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path as FilePath
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.console.session import Session, Sessions
from api.deps import DistrictPath, PersonIdPath, TaskIdPath, TubeCodePath
from api.errors import ERRORS, audit_denied, engine_status
from engine import codes, domain
from engine.access import audit
from engine.access.keys import KeyCheck, Principal, claimed_key_id
from engine.analysis import reports
from engine.contract import PositiveItemJSON, TaskJSON, TraceJSON
from engine.errors import TubetraceError
from engine.loop import progress, tasks
from engine.settings import Settings
from engine.store.gateway import Gateway
from engine.trace.export import cytoscape_elements
from engine.usecases import reads

HERE = FilePath(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
COOKIE = "tt_console"
LOGIN_COOKIE = "tt_console_login"
ROLES = ("investigator", "district", "admin")
MAX_STRING = codes.MAX_TEXT
POSITIVES_PAGE = 200  # tubes a page; the chart above them counts the whole day

router = APIRouter(prefix="/console", include_in_schema=False)


class ConsoleError(Exception):
    """An answer the console renders as a page (or a JSON envelope under /console/data/)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class LoginRequired(Exception):
    pass


@contextmanager
def engine_errors() -> Iterator[None]:
    """The API's answers for engine refusals (api.errors): the same status and code word."""
    try:
        yield
    except TubetraceError as exc:
        status = engine_status(exc)
        if status is None:
            raise
        raise ConsoleError(status, ERRORS[status][0], str(exc)) from exc


def _gw(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


def _log(request: Request, how: str = "console") -> audit.AuditSink:
    """The API's audit sink, each entry's detail marked as read through the console."""
    return audit.Marked(request.app.state.audit, how)


def _settings(request: Request) -> Settings:
    s: Settings = request.app.state.settings
    return s


def _store(request: Request) -> Sessions:
    s = _settings(request)
    return Sessions(_gw(request), s.console_idle_s, s.console_max_s)


def current_session(request: Request) -> Session:
    """The session of the cookie, read from the database with its key as it is now (a
    revoked key, a logout on another worker, the idle time or the lifetime end it)."""
    sid = request.cookies.get(COOKIE)
    session = _store(request).get(sid) if sid else None
    if session is None:
        raise LoginRequired
    request.state.principal = session.who
    return session


SessionDep = Annotated[Session, Depends(current_session)]


def need(session: Session, *roles: str) -> Principal:
    """The API's role rule for the matching endpoint."""
    if session.who.role not in roles:
        raise ConsoleError(
            403,
            "forbidden",
            f"{domain.with_article(session.who.role).capitalize()} key cannot open this page; "
            f"it needs one of: {', '.join(roles)}.",
        )
    return session.who


def safe_next(target: str | None) -> str:
    """Only a path of this console: never another host."""
    if target and target.startswith("/console/") and ".." not in target:
        if "\\" not in target and "\n" not in target and "\r" not in target:
            return target
    return "/console/"


def render(
    request: Request,
    template: str,
    session: Session | None,
    http_status: int = 200,
    /,
    **ctx: Any,
) -> Response:
    ctx.update(
        who=session.who if session else None,
        csrf=session.csrf if session else None,
        path=request.url.path,
    )
    return templates.TemplateResponse(request, template, ctx, status_code=http_status)


def error_page(request: Request, exc: ConsoleError) -> Response:
    if request.url.path.startswith("/console/data/"):
        return JSONResponse(
            status_code=exc.status, content={"error": exc.code, "message": exc.message}
        )
    sid = request.cookies.get(COOKIE)
    session = _store(request).get(sid) if sid else None
    return render(request, "error.html", session, exc.status, code=exc.status, message=exc.message)


def login_redirect(request: Request) -> Response:
    if request.url.path.startswith("/console/data/"):
        return JSONResponse(
            status_code=401,
            content={"error": "unauthorized", "message": "Log in at /console/login first."},
        )
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/console/login?next={quote(target, safe='')}", status_code=303)


def check_csrf(session: Session, token: str) -> None:
    if not secrets.compare_digest(session.csrf.encode(), token.encode()):
        raise ConsoleError(403, "forbidden", "The form is stale; reload the page and retry.")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


# ---------------------------------------------------------------- login / logout


@router.get("/login")
def login_form(request: Request, next: Annotated[str, Query(max_length=1000)] = "") -> Response:
    token = secrets.token_urlsafe(32)
    resp = render(request, "login.html", None, login_csrf=token, next=safe_next(next), error=None)
    resp.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=1800,
        path="/console/login",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return resp


@router.post("/login")
def login(
    request: Request,
    key: Annotated[str, Form(max_length=MAX_STRING)],
    csrf: Annotated[str, Form(max_length=100)],
    next: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not secrets.compare_digest(expected.encode(), csrf.encode()):
        # Audited (api.console) with the key id typed, unverified: the key is not looked up.
        request.state.key_check = KeyCheck(None, None, claimed_key_id(key), "stale_form")
        raise ConsoleError(403, "forbidden", "The login form is stale; reload it and retry.")

    def again(status: int, error: str) -> Response:
        return render(
            request,
            "login.html",
            None,
            status,
            login_csrf=expected,
            next=safe_next(next),
            error=error,
        )

    client = request.client.host if request.client else "?"
    if not request.app.state.rate_limiter.allow(f"console-login:{client}"):
        return again(429, "Too many attempts; wait a moment and retry.")
    check = request.app.state.key_cache.check(_gw(request), key)
    who = check.principal
    if who is None:  # audited as the API audits a refused key
        request.state.key_check = check
        audit_denied(request, 401, "The key is unknown or revoked.", how="console")
        return again(401, "The key is unknown or revoked.")
    if who.role not in ROLES:
        request.state.principal = who
        refusal = (
            f"{domain.with_article(who.role).capitalize()} key has no console pages; "
            "it is for sending data."
        )
        audit_denied(request, 403, refusal, how="console")
        return again(403, refusal)
    session = _store(request).create(who)
    reads.sign_in(_log(request), who)
    resp = RedirectResponse(safe_next(next), status_code=303)
    resp.set_cookie(
        COOKIE,
        session.sid,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    resp.delete_cookie(LOGIN_COOKIE, path="/console/login")
    return resp


def _logout(request: Request) -> Response:
    sid = request.cookies.get(COOKIE)
    if sid:
        _store(request).drop(sid)
    resp = RedirectResponse("/console/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/console")
    return resp


@router.get("/logout")
def logout_get(request: Request) -> Response:
    """SameSite=Strict: a link from another site arrives without the cookie, so this GET
    cannot be forced on anyone."""
    return _logout(request)


@router.post("/logout")
def logout(
    request: Request, session: SessionDep, csrf: Annotated[str, Form(max_length=100)]
) -> Response:
    check_csrf(session, csrf)
    return _logout(request)


# ---------------------------------------------------------------- home


def _today(request: Request) -> str:
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo(_settings(request).timezone)).date().isoformat()


@router.get("/")
def home(request: Request, session: SessionDep) -> Response:
    who = session.who
    if who.role == "district":
        return RedirectResponse(f"/console/districts/{who.district}/tasks", status_code=303)
    if who.role == "investigator":
        day = progress.latest_positive_day(_gw(request)) or _today(request)
        return RedirectResponse(f"/console/positives?date={day}", status_code=303)
    need(session, "admin")
    since = datetime.now(UTC) - timedelta(hours=24)
    request.app.state.audit.flush()
    rows = audit.entries(_gw(request), since=since, key_id=None, limit=500)
    return render(request, "audit.html", session, entries=list(reversed(rows)))


# ---------------------------------------------------------------- positives

DayQ = Annotated[str, Query(pattern=codes.DAY_PATTERN)]


@router.get("/positives")
def positives(
    request: Request,
    session: SessionDep,
    date: Annotated[str | None, Query(pattern=codes.DAY_PATTERN)] = None,
    cursor: Annotated[str, Query(max_length=128)] = "",
) -> Response:
    who = need(session, "investigator", "district")
    day = date or progress.latest_positive_day(_gw(request)) or _today(request)
    with engine_errors():
        items, next_cursor = reads.read_positives_page(
            _gw(request), _log(request), who, day, cursor=cursor, limit=POSITIVES_PAGE
        )
    by_district: dict[str, list[PositiveItemJSON]] = {}
    for item in items:
        by_district.setdefault(item["district_code"], []).append(item)
    return render(
        request,
        "positives.html",
        session,
        day=day,
        groups=by_district,
        names={i["district_code"]: i["district"] for i in items},
        total=len(items),
        next_cursor=next_cursor,
        cursor=cursor,
        chart_url=f"/console/data/progress?date={day}",
    )


@router.get("/data/progress")
def progress_data(request: Request, session: SessionDep, date: DayQ) -> dict[str, Any]:
    who = need(session, "investigator", "district")
    with engine_errors():
        rows = progress.loop_progress(_gw(request), who, date)
    return {
        "labels": [f"{r['district_code']} {r['district'] or ''}".strip() for r in rows],
        "statuses": list(tasks.STATUSES),
        "series": {s: [r["statuses"][s] for r in rows] for s in tasks.STATUSES},
        "rows": rows,
    }


# ---------------------------------------------------------------- trace


def _viewed_trace(
    request: Request, who: Principal, tube_code: str, reveal: bool, reason: str | None, how: str
) -> TraceJSON:
    with engine_errors():
        return reads.read_trace(
            _gw(request),
            _log(request, f"console {how}"),
            who,
            tube_code,
            reveal=reveal,
            reason=reason,
        )


def _no_reveal_by_link(request: Request) -> None:
    """Identities are revealed by the page's form (a POST with its CSRF token), never by a
    link: a reason in a URL would sit in histories, logs and Referer headers."""
    if {"reveal", "reason"} & set(request.query_params):
        raise ConsoleError(
            405,
            "method_not_allowed",
            "Identities are revealed with the form on the tube's page (a reason, sent as a "
            "form), never by a link.",
        )


# `:path`: a tube code may hold `/`.
@router.get("/tubes/{tube_code:path}")
def tube_page(request: Request, session: SessionDep, tube_code: TubeCodePath) -> Response:
    _no_reveal_by_link(request)
    who = need(session, "investigator", "district")
    view = _viewed_trace(request, who, tube_code, False, None, "page")
    data_url = f"/console/data/tubes/{quote(tube_code, safe='')}"
    return render(
        request, "tube.html", session, trace=view, data_url=data_url, revealed=False, elements=None
    )


@router.post("/tubes/{tube_code:path}")
def reveal_page(
    request: Request,
    session: SessionDep,
    tube_code: TubeCodePath,
    csrf: Annotated[str, Form(max_length=100)],
    reason: Annotated[str, Form(max_length=MAX_STRING)],
) -> Response:
    """The page with identities revealed (investigators, with a reason: the engine's rule).
    The graph comes in the page, so that the reason travels in this form only."""
    who = need(session, "investigator", "district")
    check_csrf(session, csrf)
    view = _viewed_trace(request, who, tube_code, True, reason, "page")
    return render(
        request,
        "tube.html",
        session,
        trace=view,
        data_url="",
        revealed=True,
        elements=cytoscape_elements([view]),
    )


@router.get("/data/tubes/{tube_code:path}")
def tube_data(request: Request, session: SessionDep, tube_code: TubeCodePath) -> dict[str, Any]:
    _no_reveal_by_link(request)
    who = need(session, "investigator", "district")
    view = _viewed_trace(request, who, tube_code, False, None, "graph")
    return {"tube_code": view["tube"]["code"], "elements": cytoscape_elements([view])}


# ---------------------------------------------------------------- the district queue

LABELS = {
    "acknowledged": "Acknowledge",
    "contacted": "Contacted",
    "retest_collected": "Retest collected",
    "unreachable": "Unreachable",
}


class QueueItem(TaskJSON):
    """A task as the queue page shows it: whether it is overdue, and its buttons."""

    overdue: bool
    moves: list[dict[str, str | None]]


def moves_for(task: TaskJSON, who: Principal) -> list[dict[str, str | None]]:
    """A button for every move the engine allows from the task's status for this role."""
    out: list[dict[str, str | None]] = []
    for to in tasks.ALLOWED[task["status"]]:
        if to == "closed":
            out += [
                {"to": "closed", "outcome": "released", "label": "Close: released"},
                {"to": "closed", "outcome": "confirmed", "label": "Close: confirmed"},
            ]
        else:
            out.append({"to": to, "outcome": None, "label": LABELS.get(to, to)})
    if who.role == "investigator" and task["status"] != "closed":
        out.append(
            {
                "to": "closed",
                "outcome": "closed_by_investigator",
                "label": "Close (investigator, note required)",
            }
        )
    return out


@router.get("/districts/{district_code}/tasks")
def queue(
    request: Request,
    session: SessionDep,
    district_code: DistrictPath,
    status: Annotated[str | None, Query(max_length=32)] = None,
    cursor: Annotated[str, Query(max_length=128)] = "",
) -> Response:
    who = need(session, "investigator", "district")
    status = status or None
    with engine_errors():
        items, next_cursor = reads.read_tasks_page(
            _gw(request), _log(request), who, district_code, status=status, cursor=cursor
        )
    now = datetime.now(UTC)
    shown: list[QueueItem] = [
        {**item, "overdue": progress.is_overdue(item, now), "moves": moves_for(item, who)}
        for item in items
    ]
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return render(
        request,
        "queue.html",
        session,
        district_code=district_code,
        district=domain.district_name(district_code),
        items=shown,
        status=status,
        statuses=tasks.STATUSES,
        counts=Counter(i["status"] for i in shown),
        overdue=sum(i["overdue"] for i in shown),
        next_cursor=next_cursor,
        here=here,
    )


@router.post("/tasks/{task_id}/transitions")
def move(
    request: Request,
    session: SessionDep,
    task_id: TaskIdPath,
    csrf: Annotated[str, Form(max_length=100)],
    to: Annotated[str, Form(max_length=32)],
    outcome: Annotated[str, Form(max_length=32)] = "",
    note: Annotated[str, Form(max_length=MAX_STRING)] = "",
    back: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    who = need(session, "investigator", "district")
    check_csrf(session, csrf)
    with engine_errors():
        reads.move_task(
            _gw(request),
            _log(request),
            who,
            task_id,
            to=to,
            outcome=outcome or None,
            note=note or None,
        )
    return RedirectResponse(f"{safe_next(back)}#task-{task_id}", status_code=303)


# ---------------------------------------------------------------- reports and rings


def _flat(row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, dict):
            for sub, x in v.items():
                out[f"{k}.{sub}"] = x
        else:
            out[k] = v
    return out


def chart_for(name: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What reads faster as a picture: counts per district (or per pair of districts)."""
    if name == "zoning":
        zones = ("sealed", "controlled", "precaution")
        per: dict[str, Counter[str]] = {}
        for r in rows:
            per.setdefault(r["district_code"] or "unknown", Counter())[r["zone"]] += 1
        labels = sorted(per)
        return {
            "title": "Compounds per zone, by district",
            "stacked": True,
            "labels": labels,
            "datasets": [{"label": z, "data": [per[d][z] for d in labels]} for z in zones],
        }
    if name == "household-separation":
        return {
            "title": "Household-separated persons: registered district -> residence district",
            "stacked": False,
            "labels": [
                f"{r['registered_district_code']} -> {r['residence_district_code']}" for r in rows
            ],
            "datasets": [{"label": "persons", "data": [r["persons"] for r in rows]}],
        }
    if name == "timeliness":
        labels = [r["district_code"] for r in rows]
        series = (
            ("result_to_acknowledged_hours", "median"),
            ("result_to_acknowledged_hours", "p90"),
            ("result_to_closed_hours", "median"),
            ("result_to_closed_hours", "p90"),
        )
        return {
            "title": "Hours from result to acknowledged / closed",
            "stacked": False,
            "labels": labels,
            "datasets": [
                {"label": f"{k.split('_hours')[0]} {q}", "data": [r[k][q] for r in rows]}
                for k, q in series
            ],
        }
    reach = (
        "reachable_by_own_phone",
        "reachable_only_through_directory",
        "reachable_only_through_compound",
        "unreachable",
    )
    if name == "completeness" and rows and all(k in rows[0] for k in reach):
        return {
            "title": "How the persons of the day's positive pools can be reached, by district",
            "stacked": True,
            "labels": [r["district_code"] for r in rows],
            "datasets": [{"label": k, "data": [r[k] for r in rows]} for k in reach],
        }
    flat = [_flat(r) for r in rows]
    numeric = [
        k
        for k in (flat[0] if flat else {})
        if k not in ("district_code",)
        and all(isinstance(f.get(k), int) and not isinstance(f.get(k), bool) for f in flat)
    ]
    return {
        "title": "Persons and problems in the day's positive pools, by district",
        "stacked": False,
        "labels": [r.get("district_code") or "unknown" for r in flat],
        "datasets": [{"label": k, "data": [f[k] for f in flat]} for k in numeric],
    }


def _report(request: Request, who: Principal, name: str, day: str) -> list[Mapping[str, Any]]:
    if name not in reports.REPORTS:
        raise ConsoleError(404, "not_found", f"No report '{name}'.")
    with engine_errors():
        return list(
            reads.read_report(
                _gw(request), _log(request), who, name, day, tz=_settings(request).timezone
            )
        )


@router.get("/reports/{name}")
def report_page(
    request: Request,
    session: SessionDep,
    name: Annotated[str, Path(max_length=64)],
    date: Annotated[str | None, Query(pattern=codes.DAY_PATTERN)] = None,
) -> Response:
    who = need(session, "investigator", "district")
    day = date or progress.latest_positive_day(_gw(request)) or _today(request)
    rows = [_flat(r) for r in _report(request, who, name, day)]
    columns = list(rows[0]) if rows else []
    return render(
        request,
        "report.html",
        session,
        name=name,
        names=reports.REPORTS,
        day=day,
        rows=rows,
        columns=columns,
        chart_url=f"/console/data/reports/{quote(name, safe='')}?date={day}",
    )


@router.get("/data/reports/{name}")
def report_data(
    request: Request, session: SessionDep, name: Annotated[str, Path(max_length=64)], date: DayQ
) -> dict[str, Any]:
    who = need(session, "investigator", "district")
    rows = _report(request, who, name, date)
    return {"report": name, "date": date, "chart": chart_for(name, rows)}


@router.get("/persons/{person_id}/rings")
def rings_page(
    request: Request,
    session: SessionDep,
    person_id: PersonIdPath,
    cursor: Annotated[str, Query(max_length=128)] = "",
) -> Response:
    who = need(session, "investigator")
    with engine_errors():
        answer = reads.read_rings(_gw(request), _log(request), who, person_id, cursor=cursor)
    return render(request, "rings.html", session, rings=answer)

"""The backstop: every ORM query in a session that carries a principal returns only rows
that principal may open, even if a service forgot its filter.

Services put the principal (and its grants) into `session.info`; this listener adds
`with_loader_criteria` for every record model to each ORM SELECT. Deliberate exceptions
say so greppably with `execution_options(policy="aggregate")` (counts that include what
the viewer cannot open) or `policy="validation"` (checking that a case exists).
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria
from sqlalchemy.sql.util import find_tables

from hub.models import RECORD_MODELS
from hub.security.policy import openable_clause

BYPASSES = frozenset({"aggregate", "validation"})


def row_filter(session: Session, principal, model, grants=()):
    """The principal's row filter for `model`, built once per session.

    The same principal and grants hold for the whole transaction (the Hub sets both when
    it opens the session), so the clause is reused by every statement instead of being
    rebuilt for each one."""
    if session.info.get("principal") != principal:
        return openable_clause(principal, model, grants)
    cache = session.info.setdefault("row_filters", {})
    if model not in cache:
        cache[model] = openable_clause(principal, model, session.info.get("grants", ()))
    return cache[model]


@event.listens_for(Session, "do_orm_execute")
def _row_filter(state: ORMExecuteState) -> None:
    principal = state.session.info.get("principal")
    if principal is None or not state.is_select:
        return
    if state.execution_options.get("policy") in BYPASSES:
        return
    # Only the record models this statement reads: building every model's clause for
    # each query would cost more than the query. `all_mappers` names only the selected
    # entities, so the tables in FROM (select_from, joins, subqueries) are added.
    tables = {
        t.name for t in find_tables(state.statement, include_joins=True, include_aliases=True)
    }
    involved = [
        model
        for model in RECORD_MODELS
        if model.__tablename__ in tables or any(mp.class_ is model for mp in state.all_mappers)
    ]
    if not involved:
        return
    grants = state.session.info.get("grants", ())
    state.statement = state.statement.options(
        *(
            with_loader_criteria(
                model, row_filter(state.session, principal, model, grants), include_aliases=True
            )
            for model in involved
        )
    )

"""The dashboard's tables: review states, their history, notes, and the trail.

Only ids, states, notes and the trail live here: conversation text stays in
AIRisk, and no token or secret is ever a column. Plain SQLAlchemy 2 (no Flask),
so the migrations and the command line use the same definitions.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Longest AIRisk id kept (ids are GUIDs; the pattern check allows 128).
ID = 128
#: Longest subject, e-mail or name kept.
WHO = 320

#: Review states a conversation can be in; "new" is the absence of a row.
NEW = "new"
IN_REVIEW = "in review"
CLEARED = "cleared"
ESCALATED = "escalated"
STATES = (NEW, IN_REVIEW, CLEARED, ESCALATED)


class Base(DeclarativeBase):
    """Declarative base of every table."""


class ReviewState(Base):
    """The current review state of one conversation of one AIRisk user."""

    __tablename__ = "review_state"

    airisk_user: Mapped[str] = mapped_column(String(ID), primary_key=True)
    conversation: Mapped[str] = mapped_column(String(ID), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    assignee: Mapped[str | None] = mapped_column(String(WHO))
    due: Mapped[date | None] = mapped_column(Date)
    changed_at: Mapped[datetime] = mapped_column(DateTime)
    changed_by: Mapped[str] = mapped_column(String(WHO))

    __table_args__ = (
        Index("ix_review_state_state", "state"),
        Index("ix_review_state_assignee", "assignee"),
    )


class ReviewChange(Base):
    """One change of a review state: who, when, from what, to what."""

    __tablename__ = "review_change"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    airisk_user: Mapped[str] = mapped_column(String(ID))
    conversation: Mapped[str] = mapped_column(String(ID))
    at: Mapped[datetime] = mapped_column(DateTime)
    by_subject: Mapped[str] = mapped_column(String(WHO))
    by_email: Mapped[str | None] = mapped_column(String(WHO))
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    from_assignee: Mapped[str | None] = mapped_column(String(WHO))
    to_assignee: Mapped[str | None] = mapped_column(String(WHO))
    from_due: Mapped[date | None] = mapped_column(Date)
    to_due: Mapped[date | None] = mapped_column(Date)

    __table_args__ = (Index("ix_review_change_key", "airisk_user", "conversation"),)


class Note(Base):
    """A reviewer's Markdown note on a conversation or a range of its messages."""

    __tablename__ = "note"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    airisk_user: Mapped[str] = mapped_column(String(ID))
    conversation: Mapped[str] = mapped_column(String(ID))
    #: First and last message ids it refers to (highlight=); None: the whole.
    first: Mapped[str | None] = mapped_column(String(ID))
    last: Mapped[str | None] = mapped_column(String(ID))
    author_subject: Mapped[str] = mapped_column(String(WHO))
    author_email: Mapped[str | None] = mapped_column(String(WHO))
    body: Mapped[str] = mapped_column(Text)
    escalation_reason: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    edited_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (Index("ix_note_key", "airisk_user", "conversation"),)


class NoteRevision(Base):
    """An earlier text of an edited note (the note's history)."""

    __tablename__ = "note_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    note_id: Mapped[int] = mapped_column(ForeignKey("note.id"), index=True)
    body: Mapped[str] = mapped_column(Text)
    written_at: Mapped[datetime] = mapped_column(DateTime)


class TrailRow(Base):
    """One access-trail record; ``hash`` chains it to the row before.

    ``seq`` is assigned by the writer (previous + 1) under a lock, so a
    missing number is a deleted row, never a rolled-back insert.
    """

    __tablename__ = "trail"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    )
    at: Mapped[datetime] = mapped_column(DateTime, index=True)
    subject: Mapped[str] = mapped_column(String(WHO), index=True)
    email: Mapped[str | None] = mapped_column(String(WHO))
    acting_as: Mapped[str | None] = mapped_column(String(ID), index=True)
    action: Mapped[str] = mapped_column(String(40), index=True)
    #: Conversation id, a search query, or a command's detail.
    target: Mapped[str | None] = mapped_column(String(500))
    conversation: Mapped[str | None] = mapped_column(String(ID), index=True)
    client: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

"""Uploaded and generated files (OpenAI's `file` object): JSONL kept in the database."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from core.errors import NotFound
from workers.models import BatchFile


def new_file_id() -> str:
    return f"file-{uuid.uuid4().hex}"


def add_file(session: Session, purpose: str, filename: str, content: str) -> BatchFile:
    row = BatchFile(id=new_file_id(), purpose=purpose, filename=filename, bytes=len(content.encode()), content=content)
    session.add(row)
    session.flush()
    return row


class FileStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def create(self, purpose: str, filename: str, content: str) -> BatchFile:
        with session_scope(self.sessions) as session:
            return add_file(session, purpose, filename, content)

    def get(self, file_id: str, param: str = "file_id") -> BatchFile:
        with session_scope(self.sessions) as session:
            row = session.get(BatchFile, file_id)
            if row is None:
                raise NotFound(f"no file with id '{file_id}'", param=param)
            session.expunge(row)
            return row

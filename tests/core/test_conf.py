"""siyu.conf.database_config: what each database gets from its URL and the environment."""

from __future__ import annotations

import pytest

from siyu.conf import database_config


def test_postgresql_connections_get_work_mem_for_segment_subqueries(monkeypatch):
    monkeypatch.delenv("SIYU_PG_WORK_MEM", raising=False)
    cfg = database_config("postgres://u@db.example:5432/siyu", "x.sqlite3")
    assert cfg["OPTIONS"]["options"] == "-c work_mem=64MB"
    monkeypatch.setenv("SIYU_PG_WORK_MEM", "256MB")
    assert database_config("postgres://u@db/siyu", "x")["OPTIONS"]["options"] == "-c work_mem=256MB"
    for bad in ("lots", "64MB -c statement_timeout=0", "64"):
        monkeypatch.setenv("SIYU_PG_WORK_MEM", bad)
        with pytest.raises(ValueError, match="SIYU_PG_WORK_MEM"):
            database_config("postgres://u@db/siyu", "x")
    monkeypatch.delenv("SIYU_PG_WORK_MEM")
    assert "options" not in database_config("", "x.sqlite3")["OPTIONS"]

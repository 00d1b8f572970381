"""The SQLite cache: responses and scores persist across connections; keys are canonical; old files migrate."""

import sqlite3
from contextlib import closing

from mcbo.llm.cache import CachedResponse, LLMCache, _migrate, request_key


def test_request_key_is_canonical_and_sensitive():
    a = request_key({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 0.0})
    b = request_key({"temperature": 0.0, "messages": [{"content": "x", "role": "user"}], "model": "m"})
    c = request_key({"model": "m", "messages": [{"role": "user", "content": "y"}], "temperature": 0.0})
    assert a == b != c


def test_responses_and_scores_persist(tmp_path):
    path = tmp_path / "sub" / "cache.db"
    with LLMCache(path) as cache:
        assert cache.get_response("k") is None
        cache.put_response("k", "m", "hello", 12, 3)
        cache.put_score("Say hi.", "task", "valid", "m", "cfg", 0.75, 20)
    with LLMCache(path) as cache:
        hit = cache.get_response("k")
        assert (hit.content, hit.prompt_tokens, hit.completion_tokens) == ("hello", 12, 3)
        assert cache.get_score("Say hi.", "task", "valid", "m", "cfg") == (0.75, 20)
        assert cache.get_score("Say hi.", "task", "test", "m", "cfg") is None
        assert cache.get_score("Say hi.", "task", "valid", "other", "cfg") is None
        counts = cache.counts()
    assert counts["responses"] == 1 and counts["scores"] == 1
    assert counts["response_hits"] == 1 and counts["score_hits"] == 1 and counts["score_misses"] == 2


def test_mean_logprob_is_stored_and_read_back(tmp_path):
    path = tmp_path / "cache.db"
    with LLMCache(path) as cache:
        cache.put_response("with", "m", "cats", 5, 2, -0.25)
        cache.put_response("without", "m", "dogs", 5, 2)
    with LLMCache(path) as cache:
        assert cache.get_response("with") == CachedResponse("cats", 5, 2, -0.25)
        assert cache.get_response("without") == CachedResponse("dogs", 5, 2, None)


OLD_RESPONSES = ("CREATE TABLE responses (key TEXT PRIMARY KEY, model TEXT NOT NULL, content TEXT NOT NULL, "
                 "prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, created REAL NOT NULL)")


def columns(path):
    with closing(sqlite3.connect(path)) as conn:
        return [row[1] for row in conn.execute("PRAGMA table_info(responses)")]


def test_old_file_without_the_column_is_migrated(tmp_path):
    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(OLD_RESPONSES)
        conn.execute("INSERT INTO responses VALUES ('k', 'm', 'hello', 12, 3, 0.0)")
        conn.commit()
    with LLMCache(path) as cache:
        assert columns(path)[-1] == "mean_logprob"
        assert cache.get_response("k") == CachedResponse("hello", 12, 3, None)  # old rows: no log-probability
        cache.put_response("k2", "m", "hi", 4, 1, -1.5)
        cache.put_response("k", "m", "hello again", 12, 3, -0.5)  # replaced, with the new column
        cache.put_score("Say hi.", "task", "valid", "m", "cfg", 0.5, 2)  # the scores table is created too
    with LLMCache(path) as cache:  # a second open: already migrated, nothing to do
        assert columns(path).count("mean_logprob") == 1
        assert cache.get_response("k2") == CachedResponse("hi", 4, 1, -1.5)
        assert cache.get_response("k") == CachedResponse("hello again", 12, 3, -0.5)
        assert cache.counts()["responses"] == 2


def test_migration_raced_by_another_process_is_fine(tmp_path):
    """Two processes opening one old file: the one whose ALTER TABLE loses finds the column there."""
    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(OLD_RESPONSES)
        conn.commit()

    class Raced:  # its first look at the table is from before the other process's ALTER TABLE
        def __init__(self, conn):
            self.conn, self.looks = conn, 0

        def execute(self, sql, *args):
            if sql.startswith("PRAGMA") and self.looks == 0:
                self.looks += 1
                stale = [row for row in self.conn.execute(sql, *args) if row[1] != "mean_logprob"]
                with closing(sqlite3.connect(path)) as other:
                    other.execute("ALTER TABLE responses ADD COLUMN mean_logprob REAL")
                    other.commit()
                return stale
            return self.conn.execute(sql, *args)

    with closing(sqlite3.connect(path)) as conn:
        _migrate(Raced(conn))
    assert columns(path).count("mean_logprob") == 1
    with LLMCache(path) as cache:
        cache.put_response("a", "m", "x", 1, 1, -0.1)
        assert cache.get_response("a") == CachedResponse("x", 1, 1, -0.1)

"""The SQLite cache: responses and scores persist across connections; keys are canonical."""

from mcbo.llm.cache import LLMCache, request_key


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

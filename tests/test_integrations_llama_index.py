"""LlamaIndex: EdgeLinguaPostprocessor compresses and ranks per node; LLMLingua's joins them."""

from __future__ import annotations

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from edge_lingua.integrations.llama_index import (
    COMPRESSED_TOKENS_KEY,
    ORIGIN_TOKENS_KEY,
    RETRIEVAL_SCORE_KEY,
    EdgeLinguaPostprocessor,
    query_coverage,
)

QUERY = "When did the Apollo 11 mission land on the Moon?"
TEXTS = {
    "plants": "Photosynthesis in green plants turns carbon dioxide and water into glucose and "
              "oxygen, using the energy of sunlight captured by chlorophyll.",
    "apollo": "The Apollo 11 mission landed the first humans on the Moon on July 20, 1969. Neil "
              "Armstrong and Buzz Aldrin walked on the lunar surface.",
    "bread": "Bread dough rises because yeast ferments sugars and releases carbon dioxide gas, "
             "which the gluten network traps in small bubbles.",
}


def _nodes() -> list[NodeWithScore]:
    # the retriever ranked the Apollo paragraph second
    return [
        NodeWithScore(node=TextNode(id_=key, text=text, metadata={"source": key}), score=s)
        for (key, text), s in zip(TEXTS.items(), (0.9, 0.8, 0.7), strict=True)
    ]


def test_each_node_is_compressed_scored_and_ranked_for_the_query(compressor) -> None:
    out = EdgeLinguaPostprocessor(compressor=compressor, rate=0.5).postprocess_nodes(
        _nodes(), query_str=QUERY)
    assert out[0].node.node_id == "apollo"
    assert sorted(n.node.node_id for n in out) == sorted(TEXTS)
    scores = [n.score for n in out]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[1]
    for item in out:
        key = item.node.node_id
        expected = compressor.compress(TEXTS[key], question=QUERY, rate=0.5)
        assert item.node.get_content() == expected.compressed_prompt
        assert item.score == query_coverage(QUERY, expected.compressed_prompt)
        assert item.node.metadata["source"] == key
        assert item.node.metadata[ORIGIN_TOKENS_KEY] == expected.origin_tokens
        assert item.node.metadata[COMPRESSED_TOKENS_KEY] == expected.compressed_tokens
        assert item.node.metadata[RETRIEVAL_SCORE_KEY] == {"plants": 0.9, "apollo": 0.8,
                                                           "bread": 0.7}[key]


def test_inputs_are_not_modified_and_top_n_cuts(compressor) -> None:
    nodes = _nodes()
    out = EdgeLinguaPostprocessor(compressor=compressor, top_n=1).postprocess_nodes(
        nodes, query_bundle=QueryBundle(QUERY))
    assert [n.node.node_id for n in out] == ["apollo"]
    assert [n.node.get_content() for n in nodes] == list(TEXTS.values())
    assert all(ORIGIN_TOKENS_KEY not in n.node.metadata for n in nodes)


def test_empty_nodes_pass_through_untouched(compressor) -> None:
    empty = NodeWithScore(node=TextNode(text="  ", metadata={"k": 1}), score=0.99)
    out = EdgeLinguaPostprocessor(compressor=compressor).postprocess_nodes(
        [empty, *_nodes()], query_str=QUERY)
    assert out[-1] is empty and len(out) == 4


def test_query_coverage() -> None:
    assert query_coverage("Apollo 11 land", "apollo 11 mission") == pytest.approx(2 / 3)
    assert query_coverage("", "anything") == 0.0


def test_llmlingua_postprocessor_joins_all_nodes_into_one(tmp_path, compressor,
                                                          monkeypatch) -> None:
    """LLMLingua's own postprocessor (a tiny random GPT-2 as its LM, the real code path) joins
    every node into one string: one unscored node comes back whose metadata is every node's,
    keyed by id. edge-lingua's keeps one scored node per input node."""
    pytest.importorskip("llmlingua")
    longllmlingua = pytest.importorskip("llama_index.postprocessor.longllmlingua")
    from benchmarks.common import seed_tiktoken_cache
    from tests.toolchain_models import build_gpt2

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(seed_tiktoken_cache()))  # offline cl100k

    lm = build_gpt2(tmp_path / "gpt2")
    theirs = longllmlingua.LongLLMLinguaPostprocessor(
        model_name=str(lm), device_map="cpu", target_token=40,
        instruction_str="Answer.", additional_compress_kwargs={"condition_compare": True})
    short = [NodeWithScore(node=TextNode(id_=k, text=t[:90] + " ", metadata={"source": k}),
                           score=s) for (k, t), s in zip(TEXTS.items(), (0.9, 0.8, 0.7),
                                                         strict=True)]
    joined = theirs.postprocess_nodes(short, query_str=QUERY)
    assert len(joined) == 1
    assert joined[0].score is None
    assert joined[0].node.metadata == {k: {"source": k} for k in TEXTS}

    ours = EdgeLinguaPostprocessor(compressor=compressor).postprocess_nodes(
        short, query_str=QUERY)
    assert len(ours) == len(short)
    assert all(n.score is not None for n in ours)
    assert {n.node.metadata["source"] for n in ours} == set(TEXTS)

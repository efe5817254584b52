"""LangChain: EdgeLinguaCompressor inside a real ContextualCompressionRetriever."""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("langchain_classic")

from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from edge_lingua.integrations.langchain import (
    COMPRESSED_TOKENS_KEY,
    ORIGIN_TOKENS_KEY,
    EdgeLinguaCompressor,
)

PARAGRAPHS = [
    "The Apollo 11 mission landed the first humans on the Moon on July 20, 1969. Neil "
    "Armstrong and Buzz Aldrin spent about two and a quarter hours outside the lunar module.",
    "Photosynthesis in green plants turns carbon dioxide and water into glucose and oxygen, "
    "using the energy of sunlight captured by chlorophyll in the chloroplasts.",
]


class ListRetriever(BaseRetriever):
    """Returns its documents for every query (a real langchain-core retriever)."""

    docs: list[Document]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return list(self.docs)


def _docs() -> list[Document]:
    return [
        Document(page_content=text, metadata={"source": f"doc{i}.txt", "page": i}, id=f"d{i}")
        for i, text in enumerate(PARAGRAPHS)
    ]


def test_compresses_inside_contextual_compression_retriever(compressor) -> None:
    retriever = ContextualCompressionRetriever(
        base_compressor=EdgeLinguaCompressor(compressor=compressor, rate=0.5),
        base_retriever=ListRetriever(docs=_docs()),
    )
    out = retriever.invoke("When did Apollo 11 land?")
    assert [d.id for d in out] == ["d0", "d1"]
    for doc, original in zip(out, PARAGRAPHS, strict=True):
        # the shipped default is question-aware: the retriever's query is its question
        expected = compressor.compress(original, question="When did Apollo 11 land?", rate=0.5)
        assert doc.page_content == expected.compressed_prompt
        assert len(doc.page_content) < len(original)
        assert doc.metadata[ORIGIN_TOKENS_KEY] == expected.origin_tokens
        assert doc.metadata[COMPRESSED_TOKENS_KEY] == expected.compressed_tokens
        assert expected.compressed_tokens < expected.origin_tokens
    assert [(d.metadata["source"], d.metadata["page"]) for d in out] == [
        ("doc0.txt", 0), ("doc1.txt", 1)]


def test_target_token_budget_is_used(compressor) -> None:
    (doc,) = EdgeLinguaCompressor(compressor=compressor, target_token=10).compress_documents(
        _docs()[:1], "Apollo")
    assert doc.metadata[COMPRESSED_TOKENS_KEY] <= 10


def test_empty_documents_pass_through_untouched(compressor) -> None:
    empty = Document(page_content="", metadata={"source": "e"})
    blank = Document(page_content=" \n\t", metadata={"source": "b"})
    out = EdgeLinguaCompressor(compressor=compressor).compress_documents([empty, blank], "q")
    assert out[0] is empty and out[1] is blank


def test_query_is_the_question_only_for_question_aware_bundles(
        compressor, tiny_bert_bundle) -> None:
    from edge_lingua.compressor import Compressor

    assert compressor.question_aware  # the shipped default
    (doc,) = EdgeLinguaCompressor(compressor=compressor).compress_documents(_docs()[:1], "When?")
    asked = compressor.compress(PARAGRAPHS[0], question="When?", rate=0.5)
    assert doc.page_content == asked.compressed_prompt
    plain = Compressor.load(tiny_bert_bundle, providers=["cpu"])  # single-input bundle
    assert not plain.question_aware
    (doc,) = EdgeLinguaCompressor(compressor=plain).compress_documents(_docs()[:1], "When?")
    assert doc.page_content == plain.compress(PARAGRAPHS[0], rate=0.5).compressed_prompt


def test_text_in_other_scripts_follows_the_runtime_and_keeps_metadata(compressor) -> None:
    texts = ["阿波罗11号于1969年7月20日在月球着陆，尼尔·阿姆斯特朗首先踏上月面。",
             "Аполлон-11 совершил посадку на Луну 20 июля 1969 года.",
             "def land(mission):\n    return mission.lower() + ' 🚀'\n"]
    docs = [Document(page_content=t, metadata={"lang": i}) for i, t in enumerate(texts)]
    out = EdgeLinguaCompressor(compressor=compressor).compress_documents(docs, "when?")
    for doc, text, i in zip(out, texts, range(3), strict=True):
        expected = compressor.compress(text, question="when?", rate=0.5)
        assert doc.page_content == expected.compressed_prompt
        assert doc.metadata == {"lang": i, ORIGIN_TOKENS_KEY: expected.origin_tokens,
                                COMPRESSED_TOKENS_KEY: expected.compressed_tokens}

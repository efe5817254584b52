"""LangChain: EdgeLinguaCompressor inside a real ContextualCompressionRetriever."""

from __future__ import annotations

from types import SimpleNamespace

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
        expected = compressor.compress(original, rate=0.5)
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


class _QuestionAwareStandIn:
    """A compressor whose bundle says ``question_aware``; records the question it is given.

    The question-aware bundles come from issue 13; this checks only that the adapter routes
    the query through ``question=`` for them and never for the others.
    """

    def __init__(self, inner) -> None:
        self.inner = inner
        self.bundle = SimpleNamespace(manifest=SimpleNamespace(question_aware=True))
        self.questions: list[str | None] = []

    def compress(self, text: str, *, question: str | None = None, **options):
        self.questions.append(question)
        return self.inner.compress(text, **options)


def test_query_is_passed_as_question_only_to_question_aware_bundles(compressor) -> None:
    aware = _QuestionAwareStandIn(compressor)
    EdgeLinguaCompressor(compressor=aware).compress_documents(_docs(), "When?")
    assert aware.questions == ["When?", "When?"]
    # the shipped bundle is not question-aware: compress() is called without question=
    assert not getattr(compressor.bundle.manifest, "question_aware", False)
    EdgeLinguaCompressor(compressor=compressor).compress_documents(_docs(), "When?")


def test_text_in_other_scripts_follows_the_runtime_and_keeps_metadata(compressor) -> None:
    texts = ["阿波罗11号于1969年7月20日在月球着陆，尼尔·阿姆斯特朗首先踏上月面。",
             "Аполлон-11 совершил посадку на Луну 20 июля 1969 года.",
             "def land(mission):\n    return mission.lower() + ' 🚀'\n"]
    docs = [Document(page_content=t, metadata={"lang": i}) for i, t in enumerate(texts)]
    out = EdgeLinguaCompressor(compressor=compressor).compress_documents(docs, "when?")
    for doc, text, i in zip(out, texts, range(3), strict=True):
        expected = compressor.compress(text, rate=0.5)
        assert doc.page_content == expected.compressed_prompt
        assert doc.metadata == {"lang": i, ORIGIN_TOKENS_KEY: expected.origin_tokens,
                                COMPRESSED_TOKENS_KEY: expected.compressed_tokens}

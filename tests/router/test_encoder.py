"""The traced encoder gives sentence-transformers' vectors; lanes encode side by side at one torch thread."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling

from core.compute import compute, one_thread_blocks, one_torch_thread
from router.encoder import ENCODE_CHUNK, Encoder
from router.traced_encoder import TracedEncoder

TEXTS = [
    "hi",
    "transfer 300 dollars to my savings account",
    "what's the weather like in Lisbon tomorrow afternoon?",
    "a recipe for a lemon cake without eggs",
    "Summarise the causes of the First World War in three paragraphs. " * 40,  # past the 256-token limit
] + [f"book flight {i} from Oslo to Rome on the {i}th" for i in range(40)]


def library_vectors(encoder: Encoder, texts: list[str]) -> np.ndarray:
    return compute(encoder.model.encode, texts, normalize_embeddings=True, convert_to_numpy=True)


def test_the_traced_graph_gives_the_library_vectors_in_input_order(encoder: Encoder) -> None:
    assert encoder.traced is not None and encoder.lanes_supported
    expected = library_vectors(encoder, TEXTS)
    for texts, rows in [(TEXTS, expected), (TEXTS[::-1], expected[::-1]), (TEXTS[4:5], expected[4:5])]:
        got = encoder.encode(texts)
        assert got.shape == rows.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, rows, atol=1e-5)


def test_a_model_that_is_not_mean_pooled_keeps_the_library_path(encoder: Encoder) -> None:
    cls_pooled = SentenceTransformer(modules=[encoder.model[0], Pooling(encoder.dim, pooling_mode="cls"), Normalize()])
    assert compute(TracedEncoder.build, cls_pooled, ENCODE_CHUNK) is None
    assert compute(TracedEncoder.build, encoder.model, ENCODE_CHUNK) is not None


def test_lanes_encode_side_by_side_at_one_torch_thread_and_restore_it_after(encoder: Encoder) -> None:
    before = torch.get_num_threads()
    threads_inside: list[int] = []
    blocks_inside: list[int] = []
    both_in = threading.Barrier(2, timeout=30)

    def lane(texts: list[str]) -> np.ndarray:
        with one_torch_thread():
            both_in.wait()  # the two blocks overlap
            threads_inside.append(torch.get_num_threads())
            blocks_inside.append(one_thread_blocks())
            return encoder.encode_in_lane(texts)

    with ThreadPoolExecutor(2) as pool:
        halves = list(pool.map(lane, [TEXTS[0::2], TEXTS[1::2]]))
    assert threads_inside == [1, 1] and blocks_inside == [2, 2]  # one torch thread each, two blocks at once
    with ThreadPoolExecutor(1) as fresh:  # a new thread takes torch's process-wide count: restored
        assert one_thread_blocks() == 0 and fresh.submit(torch.get_num_threads).result() == before
    expected = library_vectors(encoder, TEXTS)
    np.testing.assert_allclose(halves[0], expected[0::2], atol=1e-5)
    np.testing.assert_allclose(halves[1], expected[1::2], atol=1e-5)

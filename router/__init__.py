"""query -> RoutingDecision: the encoder, the faiss index, routing strategies, calibration, evaluation."""

# torch before faiss: faiss then runs on torch's OpenMP runtime instead of loading its own copy, whose
# idle threads spin against torch's (one text's encode took 7.5 ms right after a kNN search, 4.5 ms shared).
import torch  # noqa: F401

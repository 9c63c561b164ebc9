"""Parley's trainer engine: the PyTorch side of the learner, served as parley.v1.Trainer over gRPC."""

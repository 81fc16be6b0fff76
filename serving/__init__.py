"""The FastAPI app that serves the champion model from an exported bundle.

It imports only the code that loads and scores a model (`gigmatch.model`,
`gigmatch.features` and what they use), never the flows, the CLI, training or
the simulator: the image ships exactly that (`serving/Dockerfile`).
"""

"""The FastAPI app that serves the champion model from an exported bundle.

It arrives with the serving issue; it will import only `gigmatch` domain code.
"""

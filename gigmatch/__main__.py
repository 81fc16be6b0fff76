from gigmatch.cli import entrypoint

entrypoint()

"""Developer tools of the template, not part of the product: neither installed with the package nor shipped
with a model. repo_guard (the pre-commit guard), new_project (start a client project from this checkout).
"""

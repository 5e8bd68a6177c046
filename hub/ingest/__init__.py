"""City feeds into the standard: a mapping spec per feed, read -> map -> validate ->
transform -> upsert, with a batch record and every rejected row kept with its reasons.

Onboarding a new feed format needs a spec file (`data/specs/*.toml`), never code.
"""

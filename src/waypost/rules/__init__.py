"""The rule language: patterns, targets, conditions, the rule model and the file loader.

Pure: standard library (and PyYAML for YAML files) only, no I/O on the request path.
"""

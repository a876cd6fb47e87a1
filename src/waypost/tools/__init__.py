"""Tools around the rule language: check, test, trace, import and export."""

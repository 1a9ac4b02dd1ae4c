"""The MWAA-shaped environment model: spec, rules, chart values and import from MWAA."""

"""Course support: what the notebooks, the main job's figures and the CI rehearsal use on top of
the library (profiles and shared steps, plots, failure analysis, timing, cost estimates, the
paper's tables, the rehearsal of the paper path)."""

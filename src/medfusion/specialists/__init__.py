"""The deterministic half of 通专融合 (ARCHITECTURE.md, "specialists — the deterministic engines"): typed pure
functions over values, each citing its clinical source, that apps and agents call and an agent exposes to a
general model as tools. No database session, no HTTP.

- :mod:`medfusion.specialists.red_flags` — the one red-flag (急症信号) lexicon: emergency signs, their triage
  level (《急诊预检分诊专家共识》 2018) and the advice to give (120 / 急诊 / 12356).
"""

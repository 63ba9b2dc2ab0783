"""Synthetic Chinese patients and populations for demos, tests and benchmarks."""

from medfusion.synth.population import generate_population, generate_record, generate_resident

__all__ = ["generate_population", "generate_record", "generate_resident"]

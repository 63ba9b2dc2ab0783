"""The validation center: datasets, targets, metrics, grades, runs, reports (seed ch. 2 §一.(四))."""

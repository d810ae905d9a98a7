"""`track run` and its companions: plan, estimate, preflight, claims, execution, status (one job each)."""

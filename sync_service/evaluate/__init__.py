"""Stage two: features read from the store, the policy evaluated, verdicts stored and explained."""

"""Generation pipeline: plan, retrieve, generate, refine, filter, score, export."""

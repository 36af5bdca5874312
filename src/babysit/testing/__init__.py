"""Helpers shipped for users' tests and ours: gradient zoos, scripted histories, toy set-ups."""

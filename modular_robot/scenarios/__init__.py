"""Scenario files, their ground-truth checks, generated scenes and evaluation reports."""

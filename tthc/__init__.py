"""Quarterly consolidation of administrative-procedure dossier statistics (Biểu 06)."""

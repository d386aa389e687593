"""Airflow hooks for Armada."""

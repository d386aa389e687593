"""Airflow operator links for Armada."""

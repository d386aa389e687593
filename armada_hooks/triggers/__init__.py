"""Airflow triggers for Armada."""

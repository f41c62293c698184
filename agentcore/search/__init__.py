"""Turning free text from people and models into safe, useful full-text queries."""

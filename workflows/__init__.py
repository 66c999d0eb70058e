"""Workflows: durable decisions. One IncidentWorkflow per incident; post-mortems outlive it."""

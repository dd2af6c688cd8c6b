"""Dialogs: confirmations, reveal, export, help, errors."""

"""What an operator reads of a running chatd: its log lines (`logs`)."""

"""`sweeplab reproduce`: paper blocks (schema, values, rules), command, rendered table."""

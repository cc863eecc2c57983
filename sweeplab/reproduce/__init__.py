"""`sweeplab reproduce`: the paper block (schema), its values from rows (values), pass rules
(rules), the table (render) and the command (command)."""

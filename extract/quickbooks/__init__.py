"""QuickBooks Online connector (read side): accounts, classes, departments, deposits, journals."""

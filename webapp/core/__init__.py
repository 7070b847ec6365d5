"""Pure rules over AIRisk's records: no Flask, no HTTP."""

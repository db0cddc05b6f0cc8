"""Benchmark commands (`ledgerguard bench ...`): each measures one path end to end on this machine."""
